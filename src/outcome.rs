//! Settling a request whose answer was lost.
//!
//! A delete or a compare-and-swap that was sent and then lost its answer
//! (the member died, the time-out ran out) may or may not have been
//! applied, and repeating it blindly would report "not found" or "compare
//! failed" against our own first attempt. So the key is read back, and
//! what it holds says whether the request was applied, was not (send it
//! again, once), or cannot be told (someone else wrote in between).

use crate::error::{Error, ErrorKind, Result};

/// What reading back after a lost answer showed.
pub enum ReadBack<T> {
    /// The request was applied: this is its result.
    Applied(T),
    /// It was not applied: sending it again is safe.
    NotApplied,
    /// The key holds neither what the request expected nor what it
    /// wrote: whether it was applied cannot be told.
    Rewritten,
}

/// Sends with `attempt`; when its outcome is unknown, reads back with
/// `read_back` and lets `judge` say what that shows.
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
                ReadBack::Rewritten => Err(Error::unknown_outcome_rewritten(&lost)),
            }
        }
        other => other,
    }
}
