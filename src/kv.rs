//! The extended API's types (etcd v3 only): a key with its revisions, a
//! change seen by a revision-exact watch, a lease's time left. Plain Rust
//! types: the C layer copies them into its own structs.

/// One key as etcd v3 stores it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The key's bytes: a canonical path for keys written through us.
    pub key: Vec<u8>,
    /// The value's bytes (may hold NULs; empty for a deleted key).
    pub value: Vec<u8>,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of its last write (for an event: the change's revision).
    pub mod_revision: i64,
    /// Writes since creation, 1 after the first.
    pub version: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// One change seen by [`crate::Client::watch_events`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchEvent {
    /// True when the key was deleted (or its lease expired or was revoked).
    pub deleted: bool,
    /// The key after the change (value empty when deleted);
    /// `kv.mod_revision` is the change's revision.
    pub kv: KeyValue,
}

/// All the changes of one revision below a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The changes, in etcd's order (a transaction can change several keys).
    pub events: Vec<WatchEvent>,
    /// Their revision: pass `revision + 1` to continue.
    pub revision: i64,
}

/// Keys below a prefix, read at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The store's revision at the read.
    pub revision: i64,
}

/// What [`crate::Client::delete_prefix`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// How many keys were deleted (0 is fine).
    pub count: i64,
    /// The store's revision after the delete.
    pub revision: i64,
}

/// A lease's time, as etcd tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseTime {
    /// Seconds left before it expires.
    pub remaining: i64,
    /// Seconds it was granted (or last refreshed) for.
    pub granted: i64,
}
