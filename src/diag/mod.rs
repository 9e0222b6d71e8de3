//! Diagnostics: errors with their exit codes, source text with spans, and "did you mean"
//! suggestions. The lowest layer: it imports nothing else from the crate.

pub mod error;
pub mod secrets;
pub mod source;
pub mod suggest;
