//! What a build dir remembers: the SQLite state database, checksums of `state_files:`, and the
//! lock that allows one build at a time.

pub mod db;
pub mod files;
pub mod lock;
pub mod records;

pub use db::*;
pub use records::*;
