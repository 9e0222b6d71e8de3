#[derive(Debug, thiserror::Error)]
#[error("state")]
pub struct StateError;
