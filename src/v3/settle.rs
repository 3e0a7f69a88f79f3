//! Writes whose answer can be lost, settled soundly (SPEC section 2).
//!
//! A write is reported applied only on evidence that this request alone
//! could produce, and refused only when it can no longer apply; otherwise
//! its outcome is unknown. Two kinds of write:
//!
//! - **Fenced**: its compare can hold for at most one of its copies —
//!   "mod revision is R" (R > 0), or "value is P and mod revision below
//!   X". Once one copy applies, or anyone else writes the key, no copy
//!   can apply again. Such a write is sent again like a read when its
//!   answer is lost or slow; a copy that succeeds proves it. When a copy's
//!   compare fails after an earlier copy was lost, the only change the
//!   lost copy can have made is the key's first change above the fence
//!   (R, or X - 1): if that change is not what this write would have made,
//!   the write was refused; if it is, another client may have made the
//!   same change, and the outcome is unknown.
//! - **Unfenced**: a plain put or delete, or a create ("does not exist"
//!   can hold again after a delete). Sent once, its member watched; when
//!   its answer is lost it is sent once more, and the key's history from
//!   a revision the store had reached before the first copy was sent (the
//!   session's highest seen revision) up to the second copy's own change
//!   shows whether the first copy had already applied: no change like it
//!   there, and the second copy's success is this write's.

use serde_json::{json, Value};

use super::gateway::Gateway;
use super::history;
use super::json::{encode, TxnOpResponse, TxnResponse};
use crate::error::{Error, Result};
use crate::kv::{KeyValue, WatchEvent};
use crate::outcome::{self, Copy};

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
/// fails, as a fenced write.
pub fn fenced_txn(
    g: &Gateway,
    key: &[u8],
    compares: Vec<Value>,
    success: Vec<Value>,
) -> Result<Outcome> {
    let txn = json!({
        "compare": compares,
        "success": success,
        "failure": [{"request_range": {"key": encode(key)}}],
    });
    let (r, earlier_lost): (TxnResponse, bool) = g.call_fenced("/v3/kv/txn", &txn)?;
    Ok(outcome(r, key, earlier_lost))
}

/// One copy of a txn without a fence ([`Gateway::call_unfenced`]).
pub fn unfenced_txn(
    g: &Gateway,
    key: &[u8],
    compares: &[Value],
    success: &[Value],
    copy: usize,
) -> Result<Outcome> {
    let txn = json!({
        "compare": compares,
        "success": success,
        "failure": [{"request_range": {"key": encode(key)}}],
    });
    let r: TxnResponse = g.call_unfenced("/v3/kv/txn", &txn, key, copy)?;
    Ok(outcome(r, key, false))
}

/// A v3 key's history, for [`outcome::unfenced`].
struct V3History<'a> {
    g: &'a Gateway,
    key: &'a [u8],
}

impl outcome::KeyHistory for V3History<'_> {
    type Change = WatchEvent;

    fn last_write(&self) -> Result<Option<i64>> {
        let (now, _) = super::revisions::get_kv(self.g, self.key)
            .map_err(|e| unknown(self.key, format!("reading it back failed: {e}")))?;
        Ok(now.map(|kv| kv.mod_revision))
    }

    fn changes(&self, from: i64, until: i64) -> Result<Vec<(i64, WatchEvent)>> {
        Ok(changes(self.g, self.key, from, until)?
            .into_iter()
            .map(|e| (e.kv.mod_revision, e))
            .collect())
    }

    fn unknown(&self, why: &str) -> Error {
        unknown(self.key, why)
    }
}

/// Sends an unfenced write on `key` and settles a lost answer
/// ([`outcome::unfenced`]). A session that has seen no revision yet learns
/// one first: the history read after a lost answer starts there.
pub fn unfenced<T>(
    g: &Gateway,
    key: &[u8],
    send: impl Fn(usize) -> Result<Copy<T>>,
    like_this: impl Fn(&WatchEvent) -> bool,
) -> Result<T> {
    if g.seen_revision() == 0 {
        super::revisions::get_kv(g, key)?;
    }
    let seen = g.seen_revision();
    outcome::unfenced(&V3History { g, key }, seen, send, like_this)
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
/// `X - 1` for "mod revision below X"), and what the key held just
/// before it; `None` when there is no change above `fence`: `key` as it is
/// now (`current`) was last written at or below it.
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

/// The changes to `key` from revision `from` up to `until` (a revision at
/// which the key did change).
pub fn changes(g: &Gateway, key: &[u8], from: i64, until: i64) -> Result<Vec<WatchEvent>> {
    history::changes(g, key, from.max(1), until)
        .map_err(|e| unknown(key, format!("its history could not be read: {e}")))
}

/// True when `event` is a put of `value` attached to `lease`: what a put
/// by this write would look like.
pub fn puts(event: &WatchEvent, value: &[u8], lease: i64) -> bool {
    !event.deleted && event.kv.value == value && event.kv.lease == lease
}
