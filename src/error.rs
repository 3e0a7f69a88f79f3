//! The library's error type and how it maps onto the C API's results.
//!
//! Callers decide on [`Error::kind`], never on the message: the message is
//! for people (it names the server and what it said), the kind is for code.
//! The texts that more than one call gives (a missing key, a failed
//! compare, an unknown outcome) are written here, once.

use std::fmt;

/// What kind of failure an [`Error`] is.
///
/// The split mirrors the C API: the refusals (an answer from etcd that
/// says no) map to `ETCD_PROTOCOL_ERROR`; everything else means the call
/// could not be carried out at all (`ETCD_WTF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// etcd said no for a reason not named below (too large, bad request,
    /// lock not held, watch canceled ...).
    Refused,
    /// The key (or lease) the call needs does not exist.
    NotFound,
    /// A conditional write's compare failed: nothing was written.
    CompareFailed,
    /// The revision asked for has been compacted away.
    Compacted,
    /// etcd refused for want of permission, or of a login.
    PermissionDenied,
    /// The caller's arguments are unusable (NULL key, ttl 0 for a lock, ...).
    BadArgument,
    /// No server could be reached, or none answered in time.
    Unavailable,
    /// A request was sent but its outcome could not be learned.
    OutcomeUnknown,
    /// A server answered something we cannot make sense of.
    BadResponse,
    /// The time-out the caller gave ran out (the extended calls that take
    /// one: `ETCD_TIMEOUT`).
    TimedOut,
}

impl ErrorKind {
    /// True for an answer from etcd that says no (`ETCD_PROTOCOL_ERROR`).
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorKind::Refused
                | ErrorKind::NotFound
                | ErrorKind::CompareFailed
                | ErrorKind::Compacted
                | ErrorKind::PermissionDenied
        )
    }
}

/// Why a call did not succeed: a kind, and a one-line message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Refused, message)
    }

    pub fn bad_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadArgument, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unavailable, message)
    }

    pub fn outcome_unknown(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::OutcomeUnknown, message)
    }

    pub fn bad_response(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadResponse, message)
    }

    pub fn timed_out(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::TimedOut, message)
    }

    /// `key` does not exist.
    pub fn not_found(key: &[u8]) -> Error {
        Error::new(
            ErrorKind::NotFound,
            format!("key {} not found", String::from_utf8_lossy(key)),
        )
    }

    /// The compare of a conditional write on `key` failed; `why` says how
    /// ("does not exist", "does not hold the expected previous value").
    pub fn compare_failed(key: &[u8], why: &str) -> Error {
        Error::new(
            ErrorKind::CompareFailed,
            format!("compare failed: {} {why}", String::from_utf8_lossy(key)),
        )
    }

    /// The error for a request whose answer was lost (`why`) and whose
    /// effect could not be learned by reading back either (`read_back`).
    pub fn unknown_outcome(why: impl fmt::Display, read_back: &Error) -> Error {
        Error::outcome_unknown(format!(
            "outcome unknown: {why}; reading it back failed: {read_back}"
        ))
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with another message (the kind is kept).
    pub fn with_message(self, message: impl Into<String>) -> Error {
        Error::new(self.kind, message)
    }

    /// True for an answer from etcd that says no (maps to `ETCD_PROTOCOL_ERROR`).
    pub fn is_refusal(&self) -> bool {
        self.kind.is_refusal()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
