//! `cairn driver list` and `cairn driver check`: how users find drivers and learn whether one
//! they wrote is sound (the scenario is `driver::conformance`'s).

use std::path::Path;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::driver::Driver;
use crate::driver::conformance;

pub fn list() -> Result<()> {
    let cwd = std::env::current_dir().unwrap_or_default();
    println!("{:<10} {:<9} {:<48} DESCRIPTION", "NAME", "ENABLED", "FILE");
    for (name, path) in conformance::available(cwd) {
        let (enabled, description) = match Driver::load(&path, None) {
            Err(e) => ("invalid".to_string(), e.to_string()),
            Ok(driver) => {
                let description = driver.description.clone().unwrap_or_default();
                let enabled = if conformance::enabled_here(driver)? {
                    "yes"
                } else {
                    "no"
                };
                (enabled.to_string(), description)
            }
        };
        println!(
            "{name:<10} {enabled:<9} {:<48} {description}",
            path.display()
        );
    }
    Ok(())
}

pub fn check(file: &Path, target: Option<&Path>, globals: &[(String, String)]) -> Result<()> {
    let report = conformance::check(file, target, globals)?;
    let name = &report.name;
    println!("Conformance of driver `{name}` ({})", file.display());
    println!("{:<14} {:<6} {:>9}  DETAIL", "OPERATION", "RESULT", "TIME");
    for r in &report.rows {
        let result = if r.ok { "pass" } else { "FAIL" };
        println!("{:<14} {:<6} {:>8.3}s  {}", r.op, result, r.secs, r.detail);
    }
    match report.failure {
        None => {
            println!("driver `{name}` passes");
            Ok(())
        }
        Some((op, e)) => Err(Error::checkpoint(
            Diagnostic::new(format!(
                "driver `{name}` fails the conformance check at `{op}`"
            ))
            .note(e)
            .hint("docs/drivers.md explains what each operation must do"),
        )),
    }
}
