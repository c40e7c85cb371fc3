//! The one error type of the command: a message for one line of stderr.

use std::fmt;

/// A failure to report to the user: one line, no backtrace, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(String);

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Failure {
        Failure(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep it on one line whatever the source error printed.
        f.write_str(&self.0.replace('\n', " "))
    }
}

impl std::error::Error for Failure {}

/// The result of a subcommand.
pub type Result<T> = std::result::Result<T, Failure>;

/// Adds context to an error as a [`Failure`]: `file.read(..).context(|| format!("reading {path}"))`.
pub trait Context<T> {
    /// Wraps the error as `"{what}: {error}"`.
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Failure::new(format!("{}: {e}", what())))
    }
}
