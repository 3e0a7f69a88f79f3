//! The one interface each of etcd's APIs (v3 gateway, v2 keys) implements.
//! Keys reaching it are already canonical (see [`crate::keys`]) and the
//! arguments already checked: [`crate::Client`] owns that policy.

use crate::error::Result;

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
}
