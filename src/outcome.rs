//! Settling a request whose answer was lost (SPEC section 2): a write is
//! reported applied only on evidence this request alone could produce,
//! and refused only when it can no longer apply.
//!
//! Two tools, whatever the protocol:
//! - [`unfenced`]: a write with no compare that at most one copy can pass
//!   (a plain put or delete, a create) is settled from the key's history
//!   ([`KeyHistory`], told by v3's watch or v2's event log): a key holding
//!   the value we wrote is no proof that our request wrote it.
//! - [`settle`]: a write whose effect carries a mark no other client can
//!   leave (v2's lock waiter token, a key only its holder has) is settled
//!   by reading that mark back.
//!
//! Writes with a fence (a compare on a mod revision or index) are settled
//! where their compare is built (`v3::settle`, `v2::kv::swap`).

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

/// A key's history as one protocol tells it, for settling an unfenced
/// write (a plain put or delete, a create) whose answer was lost.
/// Revisions are v3 revisions or v2 indexes.
pub trait KeyHistory {
    /// One change of the key.
    type Change;
    /// The revision of the key's last write now (`None`: it does not exist).
    fn last_write(&self) -> Result<Option<i64>>;
    /// The key's changes from revision `from` up to and including the first
    /// at or above `until` (a revision at which the key did change), each
    /// with its revision.
    fn changes(&self, from: i64, until: i64) -> Result<Vec<(i64, Self::Change)>>;
    /// The error for an outcome that cannot be proven, saying `why`.
    fn unknown(&self, why: &str) -> Error;
}

/// What one copy of an unfenced write answered.
pub struct Copy<T> {
    /// What the call returns when this copy's answer is the write's own.
    pub result: Result<T>,
    /// The revision of the change this copy made (`None`: it changed
    /// nothing: a create refused, a delete that found nothing).
    pub changed_at: Option<i64>,
    /// When it changed nothing: the revision of the key's last write
    /// (`None`: the key does not exist).
    pub last_write: Option<i64>,
}

impl<T> Copy<T> {
    /// A copy that changed the key at `revision`.
    pub fn changed(result: Result<T>, revision: i64) -> Copy<T> {
        Copy {
            result,
            changed_at: Some(revision),
            last_write: None,
        }
    }

    /// A copy that changed nothing; the key was last written at
    /// `last_write` (`None`: it does not exist).
    pub fn unchanged(result: Result<T>, last_write: Option<i64>) -> Copy<T> {
        Copy {
            result,
            changed_at: None,
            last_write,
        }
    }
}

/// How many copies of an unfenced write are sent at most.
const UNFENCED_COPIES: usize = 3;

/// Sends an unfenced write (`send(n)` sends copy n, once, to the n-th
/// server after the preferred one) and settles a lost answer. `seen` is
/// a revision the store had reached before the first copy was sent;
/// `like_this` is true for a change this write would have made.
///
/// After a lost answer the key's history above `seen` is read: a change
/// like this write's there, and the outcome is unknown — the write is not
/// sent again, as it may have applied; none, and another copy is sent. A
/// later copy's answer is the write's own only if no change like this
/// write's came before its own change (or before the key's last write,
/// when it changed nothing): else the first copy may have applied too.
pub fn unfenced<T, H: KeyHistory>(
    history: &H,
    seen: i64,
    send: impl Fn(usize) -> Result<Copy<T>>,
    like_this: impl Fn(&H::Change) -> bool,
) -> Result<T> {
    let mut lost = false;
    for copy in 0..UNFENCED_COPIES {
        let answer = match send(copy) {
            Ok(answer) => answer,
            Err(e) if e.kind() == ErrorKind::OutcomeUnknown => {
                lost = true;
                if let Some(last) = history.last_write()?.filter(|&r| r > seen) {
                    if history
                        .changes(seen + 1, last)?
                        .iter()
                        .any(|(_, c)| like_this(c))
                    {
                        return Err(history.unknown(
                            "a change like this write's was made since it was sent, perhaps by it",
                        ));
                    }
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if !lost {
            return answer.result;
        }
        let Some(until) = answer.changed_at.or(answer.last_write) else {
            return Err(history
                .unknown("a copy sent again changed nothing, perhaps because the first copy had"));
        };
        let own = answer.changed_at.unwrap_or(i64::MAX);
        if until > seen
            && history
                .changes(seen + 1, until)?
                .iter()
                .any(|(r, c)| *r < own && like_this(c))
        {
            return Err(history.unknown(
                "a change like this write's was made before the copy sent again, perhaps by the first copy",
            ));
        }
        return answer.result;
    }
    Err(history.unknown("the answers to every copy sent were lost"))
}
