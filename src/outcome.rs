//! Settling a request whose answer was lost (SPEC section 2): a write is
//! reported applied only on evidence this request alone could produce,
//! and refused only when it can no longer apply.
//!
//! Here: [`settle`], for a write whose effect carries a mark no other
//! client can leave (v2's lock waiter token, a key only its holder has):
//! it is settled by reading that mark back. A key holding the value we
//! wrote is no such mark (another client may have written the same value).
//!
//! Key/value writes are settled where their compare is built: fenced ones
//! (a compare at most one copy can pass) from the key's history, the
//! others not at all — a lost answer is an unknown outcome (`v3::settle`,
//! `v2::kv`).

use crate::error::{Error, ErrorKind, Result};

/// What reading back a unique mark after a lost answer showed.
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
