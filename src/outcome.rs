//! Settling a request whose answer was lost, by reading back a mark that
//! only this request can have left.
//!
//! This module is for writes whose effect carries something unique to
//! the request: v2's lock waiter (a value no other client has) and its
//! release (a key only its holder has). Key/value writes, whose values
//! other clients can repeat, are settled from the key's history instead
//! (`v3::settle`, and the same rules in `v2::kv`): a key holding the value
//! we wrote is no proof that our request wrote it (SPEC section 2).

use crate::error::{Error, ErrorKind, Result};

/// What reading back after a lost answer showed.
pub enum ReadBack<T> {
    /// The request's unique mark is there: this is its result.
    Applied(T),
    /// The mark is absent: the request was not applied (yet); sending it
    /// again is safe for these writes (a stray first copy can only add a
    /// second mark of ours, never undo another client's write).
    NotApplied,
}

/// Sends with `attempt`; when its outcome is unknown, reads back with
/// `read_back` and lets `judge` say what that shows. `judge` may answer
/// `Applied` only on evidence no other client could have left.
pub fn settle<T, S>(
    attempt: impl Fn() -> Result<T>,
    read_back: impl FnOnce() -> Result<S>,
    judge: impl FnOnce(S) -> ReadBack<T>,
) -> Result<T> {
    match attempt() {
        Err(lost) if lost.kind() == ErrorKind::OutcomeUnknown => {
            let seen = read_back().map_err(|e| Error::unknown_outcome(&lost, &e))?;
            match judge(seen) {
                ReadBack::Applied(result) => Ok(result),
                ReadBack::NotApplied => attempt(),
            }
        }
        other => other,
    }
}
