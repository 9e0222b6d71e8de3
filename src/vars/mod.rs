//! Variables: scopes with their precedence ([`scope`]), resolution of templates against a
//! scope ([`resolve`]) and the template language itself ([`template`]). Values are templates
//! themselves and are resolved lazily, only when something uses them, so an unused variable
//! that names an unknown one is not an error.

pub mod resolve;
pub mod scope;
pub mod template;

pub use resolve::{Mode, Resolver};
pub use scope::{Binding, Origin, Scope};
