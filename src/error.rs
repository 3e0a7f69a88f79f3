//! The library's error type and how it maps onto the C API's three results.

use std::fmt;

/// Why a call did not succeed.
///
/// The split mirrors the C API: `Refused` is an answer from etcd that says
/// no (`ETCD_PROTOCOL_ERROR`); everything else means the call could not be
/// carried out at all (`ETCD_WTF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// etcd answered and said no: compare failed, key missing, too large,
    /// permission denied, revision compacted, lock not held.
    Refused(String),
    /// The caller's arguments are unusable (NULL key, ttl 0 for a lock, ...).
    BadArgument(String),
    /// No server could be reached, or none answered in time.
    Unavailable(String),
    /// A request was sent but its outcome could not be learned.
    OutcomeUnknown(String),
    /// A server answered something we cannot make sense of.
    BadResponse(String),
}

impl Error {
    pub fn message(&self) -> &str {
        match self {
            Error::Refused(m)
            | Error::BadArgument(m)
            | Error::Unavailable(m)
            | Error::OutcomeUnknown(m)
            | Error::BadResponse(m) => m,
        }
    }

    /// The error for a request whose answer was lost (`why`) and whose
    /// effect could not be learned by reading back either (`read_back`).
    pub fn unknown_outcome(why: &str, read_back: &Error) -> Error {
        Error::OutcomeUnknown(format!(
            "outcome unknown: {why}; reading it back failed: {read_back}"
        ))
    }

    /// True for an answer from etcd that says no (maps to `ETCD_PROTOCOL_ERROR`).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Refused(_))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
