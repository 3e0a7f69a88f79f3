//! The C API of transactions and fenced writes (SPEC sections 8, 8.1 and
//! 8.3, etcd v3 only): the flags, the compare and operation structs, and
//! `etcd_txn`. The structs are read through private mirrors whose enum
//! fields are plain integers, so that a value C passes outside an enum's
//! range is an `ETCD_WTF`, never undefined behaviour in Rust.

use std::ffi::{c_char, c_int, c_uint};
use std::ptr;

use super::boundary::{bytes_arg, close_call, put, result_call, session as session_of};
use super::extended::{etcd_kv, etcd_kv_free, kv_array, required};
use super::{etcd_result, etcd_session};
use crate::error::Error;
use crate::kv::Leadership;
use crate::txn::{Compare, CompareOp, Op, OpResult, Target, TxnOutcome};

/// `key` names a prefix: every key strictly below key/ (as etcd_list);
/// with a delete: the key itself too (as etcd_delete_prefix).
pub const ETCD_PREFIX: c_uint = 0x01;
/// Keys without values: value "" (value_len 0).
pub const ETCD_KEYS_ONLY: c_uint = 0x02;
/// No keys at all, only the count.
pub const ETCD_COUNT_ONLY: c_uint = 0x04;
/// The member asked answers from its own copy, without asking the leader:
/// cheaper, any member can serve it, may be stale.
#[allow(dead_code)] // for the header: the reads and the watcher take it
pub const ETCD_SERIALIZABLE: c_uint = 0x08;
/// Watcher: each change also carries the key as it was before.
#[allow(dead_code)] // for the header: the reads and the watcher take it
pub const ETCD_PREV_KV: c_uint = 0x10;
/// Watcher: leave out puts.
#[allow(dead_code)] // for the header: the reads and the watcher take it
pub const ETCD_NO_PUT: c_uint = 0x20;
/// Watcher: leave out deletes and expiries.
#[allow(dead_code)] // for the header: the reads and the watcher take it
pub const ETCD_NO_DELETE: c_uint = 0x40;
/// Watcher: also report progress.
#[allow(dead_code)] // for the header: the reads and the watcher take it
pub const ETCD_PROGRESS: c_uint = 0x80;

/// What a compare looks at.
#[repr(C)]
#[allow(non_camel_case_types, dead_code)]
#[derive(Clone, Copy)]
pub enum etcd_compare_target {
    /// The key's value, compared as bytes with value/value_len (a missing
    /// key never compares true).
    ETCD_CMP_VALUE = 0,
    /// Its version (0: the key does not exist).
    ETCD_CMP_VERSION = 1,
    /// 0: the key does not exist.
    ETCD_CMP_CREATE_REVISION = 2,
    ETCD_CMP_MOD_REVISION = 3,
    /// The lease it is attached to (0: none).
    ETCD_CMP_LEASE = 4,
    /// `key` is a leadership string from etcd_campaign: holds while that
    /// leadership is held.
    ETCD_CMP_LEADER = 5,
    /// `key` a lock name, `value` the index etcd_lock gave: holds while
    /// that lock is held.
    ETCD_CMP_LOCK_HELD = 6,
}

/// How a compare's key relates to its operand.
#[repr(C)]
#[allow(non_camel_case_types, dead_code)]
#[derive(Clone, Copy)]
pub enum etcd_compare_op {
    ETCD_CMP_EQUAL = 0,
    ETCD_CMP_NOT_EQUAL = 1,
    ETCD_CMP_LESS = 2,
    ETCD_CMP_GREATER = 3,
}

/// One condition of etcd_txn.
#[repr(C)]
pub struct etcd_compare {
    pub target: etcd_compare_target,
    /// ETCD_CMP_LEADER and ETCD_CMP_LOCK_HELD take ETCD_CMP_EQUAL only.
    pub op: etcd_compare_op,
    pub key: *const c_char,
    /// ETCD_CMP_VALUE: value_len bytes; ETCD_CMP_LOCK_HELD: the
    /// NUL-terminated index.
    pub value: *const c_char,
    pub value_len: usize,
    /// VERSION, CREATE_REVISION, MOD_REVISION, LEASE.
    pub number: i64,
}

/// The kind of one operation of etcd_txn.
#[repr(C)]
#[allow(non_camel_case_types, dead_code)]
#[derive(Clone, Copy)]
pub enum etcd_txn_kind {
    ETCD_TXN_GET = 0,
    ETCD_TXN_PUT = 1,
    ETCD_TXN_DELETE = 2,
}

/// One operation of etcd_txn.
#[repr(C)]
pub struct etcd_txn_op {
    pub kind: etcd_txn_kind,
    /// GET: ETCD_PREFIX, ETCD_KEYS_ONLY, ETCD_COUNT_ONLY; DELETE:
    /// ETCD_PREFIX; PUT: none.
    pub flags: c_uint,
    pub key: *const c_char,
    /// PUT: value_len bytes (NULL only with value_len 0).
    pub value: *const c_char,
    pub value_len: usize,
    /// PUT: 0 for none.
    pub lease: i64,
}

/// What one operation that ran gave; an array of them is released with
/// etcd_txn_results_free.
#[repr(C)]
pub struct etcd_txn_result {
    /// GET: the keys read (owned by the results array).
    pub kvs: *mut etcd_kv,
    pub count: usize,
    /// GET: how many matched in all; DELETE: how many were deleted; PUT: 0.
    pub number: i64,
}

/// etcd_compare as read: the enums as integers.
#[repr(C)]
struct RawCompare {
    target: c_int,
    op: c_int,
    key: *const c_char,
    value: *const c_char,
    value_len: usize,
    number: i64,
}

/// etcd_txn_op as read.
#[repr(C)]
struct RawOp {
    kind: c_int,
    flags: c_uint,
    key: *const c_char,
    value: *const c_char,
    value_len: usize,
    lease: i64,
}

// The mirrors must match the C structs exactly.
const _: () = assert!(std::mem::size_of::<RawCompare>() == std::mem::size_of::<etcd_compare>());
const _: () = assert!(std::mem::size_of::<RawOp>() == std::mem::size_of::<etcd_txn_op>());
const _: () = assert!(std::mem::size_of::<etcd_compare_target>() == std::mem::size_of::<c_int>());
const _: () = assert!(std::mem::size_of::<etcd_txn_kind>() == std::mem::size_of::<c_int>());

/// One etcd transaction (etcd v3): if every compare holds, `then_ops` run,
/// else `else_ops`, all at one revision, atomically. A failed compare is
/// not an error: ETCD_OK with `*succeeded` 0. `*results` (optional: may
/// be NULL, and then `nresults` too) gets one etcd_txn_result per
/// operation that ran, in order (`*nresults` of them; NULL when none;
/// free with etcd_txn_results_free); `*revision` (optional) the store's
/// revision after the transaction. ETCD_CMP_LEADER and
/// ETCD_CMP_LOCK_HELD hold only while that leadership or lock still
/// holds (fencing). ETCD_PROTOCOL_ERROR when etcd refused it (too many
/// operations, a key written twice, an unknown lease, too large, no
/// permission), with etcd's reason in etcd_errmsg(); ETCD_WTF for bad
/// arguments (nothing is sent), a v2 session, or a transaction that
/// writes and whose answer was lost ("outcome unknown").
#[no_mangle]
pub unsafe extern "C" fn etcd_txn(
    session: etcd_session,
    compares: *const etcd_compare,
    ncompares: usize,
    then_ops: *const etcd_txn_op,
    nthen: usize,
    else_ops: *const etcd_txn_op,
    nelse: usize,
    succeeded: *mut c_int,
    results: *mut *mut etcd_txn_result,
    nresults: *mut usize,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe {
            put(succeeded, || 0);
            put(results, ptr::null_mut);
            put(nresults, || 0);
            put(revision, || 0);
        }
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        required(succeeded, "succeeded")?;
        if !results.is_null() {
            required(nresults, "nresults")?;
        }
        // SAFETY: each array is NULL or holds its count of entries whose
        // strings are NULL or as their fields say (this call's contract).
        let (compares, then, otherwise) = unsafe {
            (
                array::<RawCompare>(compares.cast(), ncompares, "compares")?
                    .iter()
                    .map(|c| compare(c))
                    .collect::<Result<Vec<_>, Error>>()?,
                ops(then_ops, nthen, "then_ops")?,
                ops(else_ops, nelse, "else_ops")?,
            )
        };
        let outcome = s.client.txn(&compares, &then, &otherwise)?;
        let array = results_array(&outcome)?;
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe {
            *succeeded = c_int::from(outcome.succeeded);
            if results.is_null() {
                etcd_txn_results_free(array, outcome.results.len());
            } else {
                *results = array;
                *nresults = outcome.results.len();
            }
            put(revision, || outcome.revision);
        }
        Ok(())
    })
}

/// Releases an array of `n` etcd_txn_result from etcd_txn, with the keys
/// inside. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcd_txn_results_free(results: *mut etcd_txn_result, n: usize) {
    close_call(|| {
        if results.is_null() {
            return;
        }
        for i in 0..n {
            // SAFETY: `results` holds `n` entries from this library (this call's contract).
            let r = unsafe { &mut *results.add(i) };
            // SAFETY: each entry's kvs came from kv_array with `count` entries.
            unsafe { etcd_kv_free(r.kvs, r.count) };
            r.kvs = ptr::null_mut();
        }
        // SAFETY: the array came from calloc (results_array).
        unsafe { libc::free(results.cast()) };
    })
}

/// The `n` entries at `p` (NULL only when `n` is 0).
///
/// # Safety
/// A non-NULL `p` points to `n` valid `T`.
unsafe fn array<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], Error> {
    if p.is_null() {
        return match n {
            0 => Ok(&[]),
            _ => Err(Error::bad_argument(format!(
                "{what} is NULL but its count is {n}"
            ))),
        };
    }
    if n > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(Error::bad_argument(format!(
            "{what}: count {n} is too large"
        )));
    }
    // SAFETY: `n` valid entries at `p` (this function's contract).
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// The bytes of a value field: `len` bytes at `p`, NULL only for none.
///
/// # Safety
/// A non-NULL `p` points to `len` readable bytes.
unsafe fn value<'a>(p: *const c_char, len: usize, what: &str) -> Result<&'a [u8], Error> {
    // SAFETY: passed on from this function's own contract.
    unsafe { array(p.cast::<u8>(), len, what) }
}

/// # Safety
/// `c`'s strings are NULL or as its fields say.
unsafe fn compare(c: &RawCompare) -> Result<Compare, Error> {
    const VALUE: c_int = etcd_compare_target::ETCD_CMP_VALUE as c_int;
    const VERSION: c_int = etcd_compare_target::ETCD_CMP_VERSION as c_int;
    const CREATE: c_int = etcd_compare_target::ETCD_CMP_CREATE_REVISION as c_int;
    const MOD: c_int = etcd_compare_target::ETCD_CMP_MOD_REVISION as c_int;
    const LEASE: c_int = etcd_compare_target::ETCD_CMP_LEASE as c_int;
    const LEADER: c_int = etcd_compare_target::ETCD_CMP_LEADER as c_int;
    const LOCK_HELD: c_int = etcd_compare_target::ETCD_CMP_LOCK_HELD as c_int;
    let op = match c.op {
        0 => CompareOp::Equal,
        1 => CompareOp::NotEqual,
        2 => CompareOp::Less,
        3 => CompareOp::Greater,
        other => return Err(Error::bad_argument(format!("unknown compare op {other}"))),
    };
    // SAFETY: `key` is NULL or a C string (this function's contract).
    let key = unsafe { bytes_arg(c.key, "compare key") }?;
    if matches!(c.target, LEADER | LOCK_HELD) && op != CompareOp::Equal {
        return Err(Error::bad_argument(
            "ETCD_CMP_LEADER and ETCD_CMP_LOCK_HELD take ETCD_CMP_EQUAL only",
        ));
    }
    let target = match c.target {
        // SAFETY: `value` holds `value_len` bytes (this function's contract).
        VALUE => Target::Value(unsafe { value(c.value, c.value_len, "compare value") }?.to_vec()),
        VERSION => Target::Version(c.number),
        CREATE => Target::CreateRevision(c.number),
        MOD => Target::ModRevision(c.number),
        LEASE => Target::Lease(c.number),
        LEADER => {
            return Leadership::from_token(key)
                .map(Compare::Leader)
                .ok_or_else(|| {
                    Error::bad_argument(format!(
                        "{:?} is not a leadership string from etcd_campaign",
                        String::from_utf8_lossy(key)
                    ))
                })
        }
        LOCK_HELD => {
            // SAFETY: `value` is NULL or a C string (this function's contract).
            let index = unsafe { bytes_arg(c.value, "lock index (compare value)") }?;
            let index = std::str::from_utf8(index)
                .map_err(|_| Error::bad_argument("the lock index is not a lease ID"))?;
            return Ok(Compare::LockHeld {
                key: key.to_vec(),
                index: index.to_string(),
            });
        }
        other => {
            return Err(Error::bad_argument(format!(
                "unknown compare target {other}"
            )))
        }
    };
    Ok(Compare::Key {
        key: key.to_vec(),
        target,
        op,
    })
}

/// # Safety
/// `p` is NULL or holds `n` operations whose strings are NULL or as their
/// fields say.
unsafe fn ops(p: *const etcd_txn_op, n: usize, what: &str) -> Result<Vec<Op>, Error> {
    // SAFETY: passed on from this function's own contract.
    let raw = unsafe { array::<RawOp>(p.cast(), n, what) }?;
    raw.iter()
        .map(|o| {
            // SAFETY: as above.
            let key = unsafe { bytes_arg(o.key, "operation key") }?.to_vec();
            let allowed = match o.kind {
                0 => ETCD_PREFIX | ETCD_KEYS_ONLY | ETCD_COUNT_ONLY,
                2 => ETCD_PREFIX,
                _ => 0,
            };
            if o.flags & !allowed != 0 {
                return Err(Error::bad_argument(format!(
                    "unknown flag 0x{:x} for this operation",
                    o.flags & !allowed
                )));
            }
            let prefix = o.flags & ETCD_PREFIX != 0;
            Ok(match o.kind {
                0 => Op::Get {
                    key,
                    prefix,
                    keys_only: o.flags & ETCD_KEYS_ONLY != 0,
                    count_only: o.flags & ETCD_COUNT_ONLY != 0,
                },
                1 => Op::Put {
                    key,
                    // SAFETY: `value` holds `value_len` bytes (as above).
                    value: unsafe { value(o.value, o.value_len, "operation value") }?.to_vec(),
                    lease: o.lease,
                },
                2 => Op::Delete { key, prefix },
                other => {
                    return Err(Error::bad_argument(format!(
                        "unknown operation kind {other}"
                    )))
                }
            })
        })
        .collect()
}

/// A calloc'd array of one etcd_txn_result per result (NULL for none).
fn results_array(outcome: &TxnOutcome) -> Result<*mut etcd_txn_result, Error> {
    let n = outcome.results.len();
    if n == 0 {
        return Ok(ptr::null_mut());
    }
    // SAFETY: calloc checks the size; zero is a valid etcd_txn_result.
    let array = unsafe { libc::calloc(n, std::mem::size_of::<etcd_txn_result>()) }
        .cast::<etcd_txn_result>();
    if array.is_null() {
        return Err(Error::unavailable("out of memory"));
    }
    for (i, r) in outcome.results.iter().enumerate() {
        // SAFETY: `array` has room for `n` entries.
        let out = unsafe { &mut *array.add(i) };
        match r {
            OpResult::Get { kvs, count } => match kv_array(kvs) {
                Ok(kvs_out) => {
                    out.kvs = kvs_out;
                    out.count = kvs.len();
                    out.number = *count;
                }
                Err(e) => {
                    // SAFETY: a fresh array, entries filled so far or zero.
                    unsafe { etcd_txn_results_free(array, n) };
                    return Err(e);
                }
            },
            OpResult::Put => {}
            OpResult::Delete { deleted } => out.number = *deleted,
        }
    }
    Ok(array)
}
