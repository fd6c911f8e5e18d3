//! Errors of the core: a record that breaks the contract, a value that does not parse.

use std::fmt;

/// A record field that breaks the contract. `field` is the wire name (as in the proto), so the gRPC layer and the
/// CLI can name it to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A text value (time, duration, threshold) that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub what: &'static str,
    pub input: String,
    pub expected: String,
}

impl ParseError {
    pub fn new(what: &'static str, input: &str, expected: impl Into<String>) -> Self {
        Self {
            what,
            input: input.chars().take(80).collect(),
            expected: expected.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.what, self.input, self.expected)
    }
}
