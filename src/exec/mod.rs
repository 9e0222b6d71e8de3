//! Running things: process groups and signals, the terminal prompt, the context shells and the
//! `Contexts` that run a plan's resolved commands in them.

pub mod contexts;
pub mod process;
pub mod prompt;
pub mod shell;
pub mod signals;
