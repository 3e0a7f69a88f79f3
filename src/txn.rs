//! Transactions (SPEC section 8.3): compares on several keys, then one
//! list of operations or the other, applied at one revision, atomically.
//! Plain Rust types: the C layer (`ffi/txn.rs`) converts its structs into
//! them and the answer back.

use crate::kv::{KeyValue, Leadership};

/// What a compare looks at on its key, with the operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The value, compared as bytes (a missing key never compares true).
    Value(Vec<u8>),
    /// Writes since creation (0: the key does not exist).
    Version(i64),
    /// The revision that created it (0: it does not exist).
    CreateRevision(i64),
    /// The revision of its last write (0: it does not exist).
    ModRevision(i64),
    /// The lease it is attached to (0: none).
    Lease(i64),
}

/// How a compare's key and operand relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// `key`'s `target` relates to its operand by `op`. The key is a
    /// canonical path.
    Key {
        key: Vec<u8>,
        target: Target,
        op: CompareOp,
    },
    /// Holds while `leadership` holds: its leader key exists with the
    /// create revision it records (fencing).
    Leader(Leadership),
    /// Holds while the lock `key` (canonical) taken with `index` (what
    /// `lock` returned) is held: its lock key exists on that lease
    /// (fencing).
    LockHeld { key: Vec<u8>, index: String },
}

/// One operation of a transaction's branch. Keys are canonical paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Reads `key`, or with `prefix` every key strictly below `key/` (as
    /// a listing does); `keys_only` leaves the values out, `count_only`
    /// the keys (only the count comes back).
    Get {
        key: Vec<u8>,
        prefix: bool,
        keys_only: bool,
        count_only: bool,
    },
    /// Puts `value` under `key`, attached to `lease` (0: none).
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: i64,
    },
    /// Deletes `key`, or with `prefix` the key and every key below `key/`.
    Delete { key: Vec<u8>, prefix: bool },
}

impl Op {
    /// True for an operation that changes the store.
    pub fn writes(&self) -> bool {
        !matches!(self, Op::Get { .. })
    }
}

/// What one operation that ran gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The keys read (none with `count_only`), and how many matched in all.
    Get {
        kvs: Vec<KeyValue>,
        count: i64,
    },
    Put,
    /// How many keys were deleted.
    Delete {
        deleted: i64,
    },
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOutcome {
    /// True: every compare held and the `then` operations ran; false: the
    /// `otherwise` operations ran.
    pub succeeded: bool,
    /// One per operation that ran, in order.
    pub results: Vec<OpResult>,
    /// The store's revision after the transaction.
    pub revision: i64,
}
