//! Writes whose answer can be lost, settled soundly (SPEC section 2).
//!
//! A write is reported applied only on evidence that this request alone
//! could produce, and refused only when it can no longer apply; otherwise
//! its outcome is unknown.
//!
//! Nearly every write is sent **fenced**: with a compare that at most one
//! of its copies can pass, so that it can be sent again like a read when
//! its answer is lost or slow, and a copy that succeeds proves it. Either
//! the compare names a mod revision R (R > 0: once any write lands, the
//! key's mod revision is never R again), or the write carries "mod
//! revision below X", X one above the highest revision the process has
//! seen: any write to the key at X or later, one of ours included, makes
//! every copy fail — as long as the write also needs the key to exist (a
//! value compare, a leader key, a put of a key that exists), since an
//! absent key's mod revision is 0 again after a delete. A delete of an
//! absent key changes nothing, so a delete needs no more. When a copy
//! fails after an earlier one was lost, the only change an earlier copy
//! can have made is the key's first change above the fence, read from
//! etcd's history: not what this write would have made, and the copies
//! were refused (a plain put or delete is then tried with a new fence);
//! the same change, and another client may have made it: the outcome is
//! unknown.
//!
//! A create ("does not exist", which holds again after a delete; also a
//! plain put of an absent key) cannot be fenced: it is sent once, and a
//! lost answer is an unknown outcome. A copy held by a member cut off from
//! its cluster can still be applied when the member is back (the
//! linearizability suite saw it): such a write is never sent again.

use serde_json::{json, Value};

use super::gateway::Gateway;
use super::history;
use super::json::{encode, TxnOpResponse, TxnResponse};
use crate::error::{Error, Result};
use crate::kv::{KeyValue, WatchEvent};

/// What a txn with a compare did, and what the key held when it failed.
pub struct Outcome {
    pub succeeded: bool,
    /// The store's revision after it.
    pub revision: i64,
    /// The key after a failed compare (`None`: it does not exist).
    pub current: Option<KeyValue>,
    /// Keys deleted by the success ops.
    pub deleted: i64,
    /// An earlier copy was sent and its answer lost.
    pub earlier_lost: bool,
}

/// Sends the txn `compares` → `success`, reading `key` when the compare
/// fails, as a fenced write ([`Gateway::call_fenced`]).
pub fn fenced_txn(
    g: &Gateway,
    key: &[u8],
    compares: Vec<Value>,
    success: Vec<Value>,
) -> Result<Outcome> {
    let (r, earlier_lost): (TxnResponse, bool) =
        g.call_fenced("/v3/kv/txn", &txn(key, compares, success))?;
    Ok(outcome(r, key, earlier_lost))
}

/// Sends the txn once, as a write without a fence
/// ([`Gateway::call_unfenced`]): a lost answer is `OutcomeUnknown`.
pub fn unfenced_txn(
    g: &Gateway,
    key: &[u8],
    compares: Vec<Value>,
    success: Vec<Value>,
) -> Result<Outcome> {
    let r: TxnResponse = g
        .call_unfenced("/v3/kv/txn", &txn(key, compares, success), key)
        .map_err(|e| lost_unfenced(key, e))?;
    Ok(outcome(r, key, false))
}

/// A lost answer to a write without a fence: not sent again.
pub fn lost_unfenced(key: &[u8], e: Error) -> Error {
    if e.kind() != crate::error::ErrorKind::OutcomeUnknown {
        return e;
    }
    unknown(
        key,
        format!("it is not sent again (a copy held by a member cut off from its cluster may still be applied): {e}"),
    )
}

fn txn(key: &[u8], compares: Vec<Value>, success: Vec<Value>) -> Value {
    json!({
        "compare": compares,
        "success": success,
        "failure": [{"request_range": {"key": encode(key)}}],
    })
}

fn outcome(r: TxnResponse, key: &[u8], earlier_lost: bool) -> Outcome {
    let current = r
        .responses
        .iter()
        .filter_map(|op| op.response_range.as_ref())
        .flat_map(|range| range.kvs.iter())
        .find(|kv| kv.key == key)
        .cloned()
        .map(KeyValue::from);
    Outcome {
        succeeded: r.succeeded,
        revision: r.header.revision,
        current,
        deleted: deleted_count(&r.responses),
        earlier_lost,
    }
}

/// Keys deleted by a txn's delete ranges.
pub fn deleted_count(responses: &[TxnOpResponse]) -> i64 {
    responses
        .iter()
        .filter_map(|r| r.response_delete_range.as_ref())
        .map(|d| d.deleted)
        .sum()
}

/// The error for a write whose outcome cannot be proven.
pub fn unknown(key: &[u8], why: impl std::fmt::Display) -> Error {
    Error::outcome_unknown(format!(
        "outcome unknown: the answer to a write of {} was lost, and {why}; read the key, then decide",
        String::from_utf8_lossy(key)
    ))
}

/// The key's first change above `fence` (a revision at which the key was
/// last written at `fence` itself, for a compare on the mod revision; or
/// `X - 1` for "mod revision below X"), and what the key held at `fence`;
/// `None` when there is no change above `fence`: `key` as it is now
/// (`current`) was last written at or below it.
pub fn first_change_above(
    g: &Gateway,
    key: &[u8],
    fence: i64,
    current: Option<&KeyValue>,
) -> Result<Option<(Option<KeyValue>, WatchEvent)>> {
    let before = history::read_at(g, key, fence)
        .map_err(|e| unknown(key, format!("its history could not be read: {e}")))?;
    let changed = match (current, &before) {
        (Some(now), _) => now.mod_revision > fence,
        // Gone now: changed above the fence if it existed at it.
        (None, before) => before.is_some(),
    };
    if !changed {
        return Ok(None);
    }
    let first = history::first_change(g, key, fence + 1)
        .map_err(|e| unknown(key, format!("its history could not be read: {e}")))?;
    Ok(Some((before, first)))
}

/// True when `event` is a put of `value` attached to `lease`: what a put
/// by this write would look like.
pub fn puts(event: &WatchEvent, value: &[u8], lease: i64) -> bool {
    !event.deleted && event.kv.value == value && event.kv.lease == lease
}

/// Whether the key's first change above a fence can be a lost copy's.
pub enum Made<T> {
    /// It cannot: the copies were refused (and can never apply).
    NotThis,
    /// It looks like this write's, but another client may have made it.
    Maybe,
    /// It is this write's (it carries something only this write has):
    /// the call's result.
    This(T),
}

/// What a copy's answer means, for [`fenced_below`].
pub enum Next<T> {
    /// The call's result.
    Done(Result<T>),
    /// The key was written at or after the fence, and the write should
    /// still be tried: again, with the fence above this answer.
    Again,
}

/// How many fences a write tries while the key keeps being rewritten.
const FENCE_ROUNDS: usize = 8;

/// A write fenced by "mod revision below X" (`compares(X)` gives its
/// compares, that one included): sent with X one above the highest
/// revision the process has seen, again with a higher X while `answer`
/// says so. A copy that succeeds is this write's (`answer` reads it).
/// When a copy fails after an earlier copy of the same fence was lost,
/// `made(state at X - 1, the key's first change above it)` says whether
/// that change can be a lost copy's: `Maybe` is an unknown outcome,
/// `This` the write applied, `NotThis` lets `answer` read the failed copy.
///
/// For a plain delete, a copy that finds the key absent succeeds and
/// deletes nothing: that is not proof either (an earlier copy may have
/// deleted it), so `proven` says which successes prove the write.
pub fn fenced_below<T>(
    g: &Gateway,
    key: &[u8],
    compares: impl Fn(i64) -> Vec<Value>,
    success: &[Value],
    proven: impl Fn(&Outcome) -> bool,
    made: impl Fn(Option<&KeyValue>, &WatchEvent) -> Made<T>,
    answer: impl Fn(&Outcome) -> Next<T>,
) -> Result<T> {
    let mut below = g.seen_revision() + 1;
    for _ in 0..FENCE_ROUNDS {
        let o = fenced_txn(g, key, compares(below), success.to_vec())?;
        if o.earlier_lost && !proven(&o) {
            let fence = below - 1;
            if let Some((before, first)) = first_change_above(g, key, fence, o.current.as_ref())? {
                match made(before.as_ref(), &first) {
                    Made::NotThis => {}
                    Made::This(result) => return Ok(result),
                    Made::Maybe => {
                        return Err(unknown(
                            key,
                            format!(
                                "the key's first change after revision {fence} (at {}) is what this write would have made; another client may have made it",
                                first.kv.mod_revision
                            ),
                        ))
                    }
                }
            }
        }
        match answer(&o) {
            Next::Done(result) => return result,
            Next::Again => below = o.revision + 1,
        }
    }
    Err(Error::unavailable(format!(
        "write of {}: the key kept being rewritten while it was tried; nothing was written",
        String::from_utf8_lossy(key)
    )))
}

/// The compare "mod revision below `x`".
pub fn mod_below(key: &[u8], x: i64) -> Value {
    json!({"key": encode(key), "target": "MOD", "result": "LESS", "mod_revision": x.to_string()})
}
