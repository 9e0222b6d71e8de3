#![no_main]

use std::sync::LazyLock;

/// One scratch directory per fuzzing process: the target writes the input there as a file.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    tempfile::Builder::new()
        .prefix("cairn-fuzz-")
        .tempdir()
        .expect("a scratch directory")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn::fuzzing::driver(DIR.path(), data));
