//! The recipe model and how it is read from files.

pub mod alias;
pub mod dialect;
pub mod load;
pub mod model;
pub mod paths;

pub use load::load;
pub use model::*;
