//! The C API beyond the original (SPEC section 7, etcd v3 only):
//! revisions, prefix reads, conditional writes, leases, 64-bit watches.
//! Each export converts its arguments, calls [`crate::Client`] and copies
//! the answer into malloc'd C structs, inside `result_call` (the panic
//! boundary; `ETCD_TIMEOUT` for a time-out that ran out). Every output is
//! cleared first, so a failed call leaves no stale pointer behind.

use std::ffi::{c_char, c_int, c_uint};
use std::mem::size_of;
use std::ptr;
use std::time::Duration;

use super::boundary::{
    close_call, malloc_string, put, result_call, session as session_of, session_and_key,
};
use super::{etcd_result, etcd_session};
use crate::error::Error;
use crate::kv::{KeyValue, WatchEvent};

/// One key as etcd v3 stores it. In an array from `etcd_get_kv` or
/// `etcd_list`, released with `etcd_kv_free` (strings included).
#[repr(C)]
pub struct etcd_kv {
    /// The key's canonical path, NUL-terminated.
    pub key: *mut c_char,
    /// `value_len` bytes followed by a NUL (the value may hold NULs).
    pub value: *mut c_char,
    pub value_len: usize,
    /// Revision of the write that created the key.
    pub create_revision: i64,
    /// Revision of its last write.
    pub mod_revision: i64,
    /// Writes since creation, 1 after the first.
    pub version: i64,
    /// The lease the key is attached to, 0 for none.
    pub lease: i64,
}

/// One change seen by `etcd_watch_events`; an array of them is released
/// with `etcd_events_free`.
#[repr(C)]
pub struct etcd_event {
    /// 1: the key was deleted or its lease expired (or was revoked).
    pub deleted: c_int,
    /// The key after the change (value "" when deleted);
    /// `kv.mod_revision` is the change's revision.
    pub kv: etcd_kv,
}

/// Releases an array of `count` etcd_kv from `etcd_get_kv` or `etcd_list`,
/// with the strings inside. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcd_kv_free(kvs: *mut etcd_kv, count: usize) {
    close_call(|| {
        if kvs.is_null() {
            return;
        }
        for i in 0..count {
            // SAFETY: `kvs` holds `count` entries from this library (this call's contract).
            unsafe { free_kv(&mut *kvs.add(i)) };
        }
        // SAFETY: the array came from malloc (kv_array).
        unsafe { libc::free(kvs.cast()) };
    })
}

/// Releases an array of `count` etcd_event from `etcd_watch_events`, with
/// the strings inside. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn etcd_events_free(events: *mut etcd_event, count: usize) {
    close_call(|| {
        if events.is_null() {
            return;
        }
        for i in 0..count {
            // SAFETY: `events` holds `count` entries from this library (this call's contract).
            unsafe { free_kv(&mut (*events.add(i)).kv) };
        }
        // SAFETY: the array came from malloc (event_array).
        unsafe { libc::free(events.cast()) };
    })
}

/// A linearizable read of `key`. ETCD_OK with `*kv` a one-element array
/// (free it with `etcd_kv_free(*kv, 1)`), or NULL when the key does not
/// exist; `*revision` (optional: may be NULL) the store's revision at the
/// read. ETCD_WTF for a NULL session, key or `kv`, or a v2 session.
#[no_mangle]
pub unsafe extern "C" fn etcd_get_kv(
    session: etcd_session,
    key: *const c_char,
    kv: *mut *mut etcd_kv,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe { clear(kv, revision) };
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, key) = unsafe { session_and_key(session, key) }?;
        required(kv, "kv")?;
        let (found, rev) = s.client.get_kv(key)?;
        let array = match found {
            Some(found) => kv_array(std::slice::from_ref(&found))?,
            None => ptr::null_mut(),
        };
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe {
            put(kv, || array);
            put(revision, || rev);
        }
        Ok(())
    })
}

/// Every key strictly below `prefix/`, at every depth (`_` names too),
/// with values, sorted by key, from one read. ETCD_OK with `*count` keys
/// in `*kvs` (NULL when 0; free with `etcd_kv_free(*kvs, *count)`) and
/// `*revision` (optional) the revision read at. The key `prefix` itself
/// is not listed. ETCD_WTF for a NULL session, prefix, `kvs` or `count`.
#[no_mangle]
pub unsafe extern "C" fn etcd_list(
    session: etcd_session,
    prefix: *const c_char,
    kvs: *mut *mut etcd_kv,
    count: *mut usize,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe { clear(kvs, revision) };
        // SAFETY: as above.
        unsafe { put(count, || 0) };
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, prefix) = unsafe { session_and_key(session, prefix) }?;
        required(kvs, "kvs")?;
        required(count, "count")?;
        let listing = s.client.list(prefix)?;
        let array = kv_array(&listing.kvs)?;
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe {
            put(kvs, || array);
            put(count, || listing.kvs.len());
            put(revision, || listing.revision);
        }
        Ok(())
    })
}

/// Puts the `value_len` bytes at `value` (NULs allowed; `value` may be
/// NULL only when `value_len` is 0) under `key`, attached to `lease` (0:
/// none). ETCD_OK with `*revision` (optional) the write's revision;
/// ETCD_PROTOCOL_ERROR for an unknown lease, a value too large, no
/// permission; ETCD_WTF for bad arguments or no server.
#[no_mangle]
pub unsafe extern "C" fn etcd_put(
    session: etcd_session,
    key: *const c_char,
    value: *const c_char,
    value_len: usize,
    lease: i64,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `revision` is NULL or writable (this call's contract).
        unsafe { put(revision, || 0) };
        // SAFETY: an open session, a C string or NULL, `value_len` readable
        // bytes at a non-NULL `value` (this call's contract).
        let ((s, key), value) =
            unsafe { (session_and_key(session, key)?, bytes(value, value_len)?) };
        let rev = s.client.put(key, value, lease)?;
        // SAFETY: as above.
        unsafe { put(revision, || rev) };
        Ok(())
    })
}

/// `etcd_put` only if the key's mod revision equals `if_revision`
/// (`if_revision` 0: only if the key does not exist). ETCD_OK with
/// `*revision` (optional) the new revision; ETCD_PROTOCOL_ERROR when the
/// condition failed (nothing written); ETCD_WTF for a negative
/// `if_revision`, bad arguments, or an outcome that could not be learned.
#[no_mangle]
pub unsafe extern "C" fn etcd_put_if(
    session: etcd_session,
    key: *const c_char,
    value: *const c_char,
    value_len: usize,
    lease: i64,
    if_revision: i64,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `revision` is NULL or writable (this call's contract).
        unsafe { put(revision, || 0) };
        // SAFETY: as for etcd_put.
        let ((s, key), value) =
            unsafe { (session_and_key(session, key)?, bytes(value, value_len)?) };
        let rev = s.client.put_if(key, value, lease, if_revision)?;
        // SAFETY: as above.
        unsafe { put(revision, || rev) };
        Ok(())
    })
}

/// Deletes `key` only if its mod revision equals `if_revision`
/// (`if_revision` < 0: unconditionally). ETCD_OK with `*revision`
/// (optional) the revision after the delete; ETCD_PROTOCOL_ERROR when the
/// key is missing or the condition failed.
#[no_mangle]
pub unsafe extern "C" fn etcd_delete_if(
    session: etcd_session,
    key: *const c_char,
    if_revision: i64,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `revision` is NULL or writable (this call's contract).
        unsafe { put(revision, || 0) };
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, key) = unsafe { session_and_key(session, key) }?;
        let rev = s
            .client
            .delete_if(key, (if_revision >= 0).then_some(if_revision))?;
        // SAFETY: as above.
        unsafe { put(revision, || rev) };
        Ok(())
    })
}

/// Deletes the key `prefix` and every key below `prefix/` in one request
/// (never siblings such as `prefix-x`). ETCD_OK with `*deleted`
/// (optional) how many (0 is fine) and `*revision` (optional) the
/// revision after. ETCD_WTF for the root "/" (that would be every key).
#[no_mangle]
pub unsafe extern "C" fn etcd_delete_prefix(
    session: etcd_session,
    prefix: *const c_char,
    deleted: *mut i64,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe { clear(deleted, revision) };
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, prefix) = unsafe { session_and_key(session, prefix) }?;
        let done = s.client.delete_prefix(prefix)?;
        // SAFETY: as above.
        unsafe {
            put(deleted, || done.count);
            put(revision, || done.revision);
        }
        Ok(())
    })
}

/// Waits for the first revision >= `from_revision` (<= 0: the next change
/// from now) that changes `prefix` or a key below `prefix/`; `timeout_ms`
/// 0 waits for ever. ETCD_OK with all the changes of that one revision in
/// `*events` (`*count` of them; free with `etcd_events_free(*events,
/// *count)`) and `*revision` (optional) that revision: call again with
/// `*revision + 1` to miss and repeat nothing. ETCD_TIMEOUT (`*count` 0,
/// `*events` NULL) when the time ran out: a change arriving later is kept
/// for the next call. ETCD_PROTOCOL_ERROR for a compacted revision (the
/// message names the oldest one left). The stream is kept between calls
/// and moves to another member, from where it was, when one dies.
#[no_mangle]
pub unsafe extern "C" fn etcd_watch_events(
    session: etcd_session,
    prefix: *const c_char,
    from_revision: i64,
    timeout_ms: c_uint,
    events: *mut *mut etcd_event,
    count: *mut usize,
    revision: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe { clear(events, revision) };
        // SAFETY: as above.
        unsafe { put(count, || 0) };
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, prefix) = unsafe { session_and_key(session, prefix) }?;
        required(events, "events")?;
        required(count, "count")?;
        let timeout = (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)));
        let from = (from_revision > 0).then_some(from_revision);
        let changes = s.client.watch_events(prefix, from, timeout)?;
        let array = event_array(&changes.events)?;
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe {
            put(events, || array);
            put(count, || changes.events.len());
            put(revision, || changes.revision);
        }
        Ok(())
    })
}

/// Grants a lease of `ttl` seconds (etcd's shortest is 2). ETCD_OK with
/// `*lease` its ID; ETCD_WTF for `ttl` <= 0 or a NULL `lease`.
#[no_mangle]
pub unsafe extern "C" fn etcd_lease_grant(
    session: etcd_session,
    ttl: i64,
    lease: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `lease` is NULL or writable (this call's contract).
        unsafe { put(lease, || 0) };
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        required(lease, "lease")?;
        let id = s.client.lease_grant(ttl)?;
        // SAFETY: as above.
        unsafe { put(lease, || id) };
        Ok(())
    })
}

/// Refreshes `lease` once. ETCD_OK with `*ttl` (optional) the seconds
/// granted again; ETCD_PROTOCOL_ERROR once the lease is gone (expired,
/// revoked, or never granted).
#[no_mangle]
pub unsafe extern "C" fn etcd_lease_keepalive(
    session: etcd_session,
    lease: i64,
    ttl: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `ttl` is NULL or writable (this call's contract).
        unsafe { put(ttl, || 0) };
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        let granted = s.client.lease_keepalive(lease)?;
        // SAFETY: as above.
        unsafe { put(ttl, || granted) };
        Ok(())
    })
}

/// Keeps `lease` alive from a thread of the session (a refresh every third
/// of its TTL, failing over like any call) until `etcd_lease_revoke`,
/// `etcd_close`, or the lease is lost (then `etcd_lease_ttl` answers
/// ETCD_PROTOCOL_ERROR). ETCD_OK; ETCD_PROTOCOL_ERROR if the lease is
/// already gone.
#[no_mangle]
pub unsafe extern "C" fn etcd_lease_keep(session: etcd_session, lease: i64) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        s.client.lease_keep(lease)
    })
}

/// How long `lease` has left. ETCD_OK with `*remaining` and `*granted`
/// (both optional) in seconds; ETCD_PROTOCOL_ERROR when it is gone.
#[no_mangle]
pub unsafe extern "C" fn etcd_lease_ttl(
    session: etcd_session,
    lease: i64,
    remaining: *mut i64,
    granted: *mut i64,
) -> etcd_result {
    result_call(|| {
        // SAFETY: outputs are NULL or writable (this call's contract).
        unsafe { clear(remaining, granted) };
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        let time = s.client.lease_ttl(lease)?;
        // SAFETY: as above.
        unsafe {
            put(remaining, || time.remaining);
            put(granted, || time.granted);
        }
        Ok(())
    })
}

/// Revokes `lease`: the keys attached to it are deleted, and an
/// `etcd_lease_keep` on it stops. ETCD_OK; ETCD_PROTOCOL_ERROR if etcd
/// does not know the lease.
#[no_mangle]
pub unsafe extern "C" fn etcd_lease_revoke(session: etcd_session, lease: i64) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        s.client.lease_revoke(lease)
    })
}

/// An output the call exists for: NULL is a bad argument (checked before
/// anything is asked of etcd, so nothing is granted for nobody).
fn required<T>(out: *mut T, what: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::bad_argument(format!("{what} is NULL")));
    }
    Ok(())
}

/// Clears two outputs (a pointer or a number each), skipping NULL ones.
///
/// # Safety
/// Each is NULL or writable.
unsafe fn clear<A: Default, B: Default>(a: *mut A, b: *mut B) {
    // SAFETY: passed on from this function's own contract.
    unsafe {
        put(a, A::default);
        put(b, B::default);
    }
}

/// The `len` bytes at `p`; NULL only for no bytes.
///
/// # Safety
/// A non-NULL `p` points to `len` readable bytes.
unsafe fn bytes<'a>(p: *const c_char, len: usize) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return match len {
            0 => Ok(&[]),
            _ => Err(Error::bad_argument(format!(
                "value is NULL but value_len is {len}"
            ))),
        };
    }
    if len > isize::MAX as usize {
        return Err(Error::bad_argument(format!("value_len {len} is too large")));
    }
    // SAFETY: `len` readable bytes at `p` (this function's contract).
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// A malloc'd array of `count` zeroed `T`; NULL for none.
fn zeroed_array<T>(count: usize) -> Result<*mut T, Error> {
    if count == 0 {
        return Ok(ptr::null_mut());
    }
    // SAFETY: calloc checks `count * size` for overflow; zero is a valid
    // etcd_kv / etcd_event (NULL strings, zero numbers).
    let p = unsafe { libc::calloc(count, size_of::<T>()) };
    if p.is_null() {
        return Err(Error::unavailable("out of memory"));
    }
    Ok(p.cast())
}

/// Fills `out` from `kv`; false if a string could not be allocated.
fn fill_kv(out: &mut etcd_kv, kv: &KeyValue) -> bool {
    out.key = malloc_string(&kv.key);
    out.value = malloc_string(&kv.value);
    out.value_len = kv.value.len();
    out.create_revision = kv.create_revision;
    out.mod_revision = kv.mod_revision;
    out.version = kv.version;
    out.lease = kv.lease;
    !out.key.is_null() && !out.value.is_null()
}

/// Frees the strings of one etcd_kv.
///
/// # Safety
/// Its strings are NULL or from malloc.
unsafe fn free_kv(kv: &mut etcd_kv) {
    // SAFETY: NULL or malloc'd (this function's contract); free(NULL) is fine.
    unsafe {
        libc::free(kv.key.cast());
        libc::free(kv.value.cast());
    }
    kv.key = ptr::null_mut();
    kv.value = ptr::null_mut();
}

/// A malloc'd etcd_kv array holding `kvs` (NULL when empty).
fn kv_array(kvs: &[KeyValue]) -> Result<*mut etcd_kv, Error> {
    let array = zeroed_array::<etcd_kv>(kvs.len())?;
    for (i, kv) in kvs.iter().enumerate() {
        // SAFETY: `array` has room for kvs.len() entries.
        if !fill_kv(unsafe { &mut *array.add(i) }, kv) {
            // SAFETY: a fresh array of kvs.len() entries, strings NULL or malloc'd.
            unsafe { etcd_kv_free(array, kvs.len()) };
            return Err(Error::unavailable("out of memory"));
        }
    }
    Ok(array)
}

/// A malloc'd etcd_event array holding `events` (NULL when empty).
fn event_array(events: &[WatchEvent]) -> Result<*mut etcd_event, Error> {
    let array = zeroed_array::<etcd_event>(events.len())?;
    for (i, e) in events.iter().enumerate() {
        // SAFETY: `array` has room for events.len() entries.
        let out = unsafe { &mut *array.add(i) };
        out.deleted = c_int::from(e.deleted);
        if !fill_kv(&mut out.kv, &e.kv) {
            // SAFETY: a fresh array of events.len() entries, strings NULL or malloc'd.
            unsafe { etcd_events_free(array, events.len()) };
            return Err(Error::unavailable("out of memory"));
        }
    }
    Ok(array)
}
