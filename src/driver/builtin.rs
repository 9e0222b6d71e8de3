//! The shipped drivers, compiled into the binary so an installed cairn has them wherever it
//! runs. A file of the same name on the search path (next to the recipe, in the user's config,
//! `CAIRN_DRIVER_PATH`, `../share/cairn/drivers`) still wins. They are written in the native
//! syntax whatever the recipe's dialect.

use std::path::{Path, PathBuf};

/// How a built-in driver's path is spelt in messages and listings.
const PREFIX: &str = "<builtin>";

pub const DRIVERS: [(&str, &str); 7] = [
    ("btrfs", include_str!("../../drivers/btrfs.yaml")),
    ("copy", include_str!("../../drivers/copy.yaml")),
    ("hardlink", include_str!("../../drivers/hardlink.yaml")),
    ("qemu", include_str!("../../drivers/qemu.yaml")),
    ("qemu-img", include_str!("../../drivers/qemu-img.yaml")),
    ("reflink", include_str!("../../drivers/reflink.yaml")),
    ("zfs", include_str!("../../drivers/zfs.yaml")),
];

/// The path a built-in driver is known by, `<builtin>/NAME.yaml`.
pub fn path(name: &str) -> PathBuf {
    Path::new(PREFIX).join(format!("{name}.yaml"))
}

/// The text of the built-in driver `path` names, if it names one.
pub fn text(path: &Path) -> Option<&'static str> {
    let name = path
        .strip_prefix(PREFIX)
        .ok()?
        .to_str()?
        .strip_suffix(".yaml")?;
    DRIVERS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_driver_file_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("drivers");
        let mut shipped: Vec<String> = std::fs::read_dir(&dir)
            .expect("drivers/")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".yaml")
                    .map(str::to_string)
            })
            .collect();
        shipped.sort();
        let built_in: Vec<&str> = DRIVERS.iter().map(|(n, _)| *n).collect();
        assert_eq!(shipped, built_in);
        for name in built_in {
            let on_disk = std::fs::read_to_string(dir.join(format!("{name}.yaml"))).expect("read");
            assert_eq!(text(&path(name)), Some(on_disk.as_str()));
        }
        assert_eq!(text(Path::new("drivers/copy.yaml")), None);
    }
}
