//! `cairn snapshot-tree SRC DST [--link-dest PREV]`, which the hardlink driver calls (see
//! `snapshot`).

use std::path::Path;

use crate::diag::error::Result;

pub fn run(src: &Path, dst: &Path, link_dest: Option<&Path>) -> Result<()> {
    let summary = crate::snapshot::snapshot(src, dst, link_dest)?;
    if let (Some(why), Some(prev)) = (&summary.full_copy, link_dest) {
        eprintln!(
            "cairn snapshot-tree: nothing linked from {}: {why}; copied every file",
            prev.display()
        );
    }
    Ok(())
}
