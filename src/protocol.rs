//! The one interface each of etcd's APIs (v3 gateway, v2 keys) implements.
//! Keys reaching it are already canonical (see [`crate::keys`]) and the
//! arguments already checked: [`crate::Client`] owns that policy.

use std::time::Duration;

use crate::error::Result;
use crate::kv::{Changes, Deleted, KeyValue, Leadership, LeaseTime, Listing};
use crate::txn::{Compare, Op, TxnOutcome};

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Canonical path of the key that changed.
    pub key: Vec<u8>,
    /// The new value; `None` for a delete or an expiry.
    pub value: Option<Vec<u8>>,
    /// The change's revision (v3 mod revision, v2 modifiedIndex).
    pub revision: i64,
}

pub trait Protocol: Send + Sync {
    /// The value of `key`; else, if keys exist below it, the listing of its
    /// immediate children (canonical paths joined by `\n`); else `None`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Stores `value` (for `ttl` seconds when `ttl > 0`).
    fn put(&self, key: &[u8], value: &[u8], ttl: u32) -> Result<()>;
    /// Stores `value` only if the current value equals `prev` (an error of
    /// kind `CompareFailed` otherwise); for `ttl` seconds when `ttl > 0`.
    fn swap(&self, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()>;
    /// Deletes the single key; false if there was none.
    fn delete(&self, key: &[u8]) -> Result<bool>;
    /// The leader's member ID in lowercase hex; an error while there is none.
    fn leader(&self) -> Result<String>;
    /// The first change to `prefix` or below it at revision >= `from`
    /// (`None`: the next change from now). Blocks until there is one.
    fn watch(&self, prefix: &[u8], from: Option<i64>) -> Result<Event>;
    /// Takes the lock `key` for `ttl` seconds, waiting while it is held;
    /// returns the lock's index.
    fn lock(&self, key: &[u8], ttl: u32) -> Result<String>;
    /// Renews a held lock; `Refused` once it is lost.
    fn renew(&self, key: &[u8], ttl: u32, index: &str) -> Result<()>;
    /// Releases a held lock; `Refused` if `index` does not hold `key`.
    fn unlock(&self, key: &[u8], index: &str) -> Result<()>;
    /// The extended API (revisions, prefixes, conditional writes, leases),
    /// when this protocol has it: etcd v3 only.
    /// The last session using this object closed: drop what only
    /// sessions need (parked watch streams); connections stay pooled.
    fn release_streams(&self) {}

    fn extended(&self) -> Option<&dyn Extended> {
        None
    }
}

/// The extended API's calls (etcd v3), elections included. Keys are
/// canonical (election names already in their namespace), arguments
/// checked ([`crate::Client`] does both).
pub trait Extended: Send + Sync {
    /// `key` with its revisions (`None`: no such key), and the store's
    /// revision at the read.
    fn get_kv(&self, key: &[u8]) -> Result<(Option<KeyValue>, i64)>;
    /// Every key strictly below `prefix/`, sorted, from one read.
    fn list(&self, prefix: &[u8]) -> Result<Listing>;
    /// Puts `value` attached to `lease` (0: none); the write's revision.
    fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<i64>;
    /// Puts only if the key's mod revision is `if_revision` (0: only if
    /// the key does not exist); `CompareFailed` otherwise.
    fn put_if(&self, key: &[u8], value: &[u8], lease: i64, if_revision: i64) -> Result<i64>;
    /// Deletes the key, only if its mod revision is `if_revision` (when
    /// given); `NotFound` or `CompareFailed` otherwise. The revision after.
    fn delete_if(&self, key: &[u8], if_revision: Option<i64>) -> Result<i64>;
    /// One transaction: `then` if every compare holds, else `otherwise`.
    fn txn(&self, compares: &[Compare], then: &[Op], otherwise: &[Op]) -> Result<TxnOutcome>;
    /// Deletes `prefix` and every key below `prefix/`, in one request.
    fn delete_prefix(&self, prefix: &[u8]) -> Result<Deleted>;
    /// The changes of the first revision >= `from` (`None`: from now)
    /// to `prefix` or below it; `TimedOut` after `timeout` (when given).
    fn watch_events(
        &self,
        prefix: &[u8],
        from: Option<i64>,
        timeout: Option<Duration>,
    ) -> Result<Changes>;
    /// Grants a lease of `ttl` seconds; its ID.
    fn lease_grant(&self, ttl: i64) -> Result<i64>;
    /// Refreshes the lease once; the seconds granted again. `NotFound`
    /// once it is gone.
    fn lease_keepalive(&self, lease: i64) -> Result<i64>;
    /// Keeps the lease alive from a thread until the returned keeper is
    /// dropped or the lease is lost.
    fn lease_keep(&self, lease: i64) -> Result<Box<dyn LeaseKeeper>>;
    /// How long the lease has left; `NotFound` when it is gone.
    fn lease_ttl(&self, lease: i64) -> Result<LeaseTime>;
    /// Revokes the lease (its keys go with it); `NotFound` if unknown.
    fn lease_revoke(&self, lease: i64) -> Result<()>;
    /// Becomes the leader of the election `name` (etcd's name) with
    /// `value`, on `lease`, waiting while another candidate leads;
    /// `TimedOut` after `timeout` (when given), the candidacy withdrawn.
    fn campaign(
        &self,
        name: &[u8],
        value: &[u8],
        lease: i64,
        timeout: Option<Duration>,
    ) -> Result<Leadership>;
    /// Changes the leader's value; `Refused` when no longer the leader.
    /// The write's revision.
    fn proclaim(&self, leadership: &Leadership, value: &[u8]) -> Result<i64>;
    /// Gives the leadership up; `Refused` when it was already lost.
    fn resign(&self, leadership: &Leadership) -> Result<()>;
    /// The leader's key and value; `Refused` when nobody leads.
    fn election_leader(&self, name: &[u8]) -> Result<KeyValue>;
    /// The first change of leader or value at revision >= `from` (`None`:
    /// the current leader at once if any); `TimedOut` after `timeout`.
    fn observe(
        &self,
        name: &[u8],
        from: Option<i64>,
        timeout: Option<Duration>,
    ) -> Result<KeyValue>;
}

/// A thread keeping a lease alive; dropping it stops the thread.
pub trait LeaseKeeper: Send {
    /// True once the thread has stopped by itself (the lease was lost).
    fn ended(&self) -> bool;
}
