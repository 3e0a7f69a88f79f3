//! The C API of the original `etcd-api` header: pointers in, malloc'd
//! strings out, every call behind a panic boundary. Behaviour lives in
//! [`crate::Client`]; this layer only converts. Each export converts its
//! arguments, calls `Client` and converts the answer, inside the wrapper
//! for its kind (`boundary::result_call` and the like), which is the panic
//! boundary and maps an error to the call's error value and message.

#![allow(non_camel_case_types, clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod boundary;

use std::ffi::{c_char, c_int, c_uint, c_ushort, c_void};
use std::ptr;

use boundary::{
    bytes_arg, close_call, malloc_string, opt_bytes_arg, opt_read, opt_ref, put, result_call,
    server_entries, session as session_of, session_and_key, session_call, string_call,
    take_session,
};

use crate::client::Client;
use crate::config::SecureOptions;
use crate::error::Error;
use crate::servers::{parse_endpoint, parse_server_list, Endpoint};

/// Result of the calls that do not return a string.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum etcd_result {
    /// The call did what was asked.
    ETCD_OK = 0,
    /// etcd answered and refused (compare failed, key missing, too large,
    /// lock not held, revision compacted ...).
    ETCD_PROTOCOL_ERROR = 1,
    /// Bad arguments, or no server could be reached or understood.
    ETCD_WTF = 2,
    /// The time-out the caller gave ran out (only the extended calls that
    /// take a `timeout_ms` return it; the original calls never do).
    ETCD_TIMEOUT = 3,
}

/// One server of the list given to `etcd_open`; the list ends with an
/// entry whose `host` is NULL. A `port` of 0 means the default, 2379.
#[repr(C)]
pub struct etcd_server {
    pub host: *mut c_char,
    pub port: c_ushort,
}

/// An open session (opaque).
pub type etcd_session = *mut c_void;

/// Opens a session on `server_list`, an array ended by an entry whose
/// `host` is NULL. The list is copied; the caller keeps ownership.
/// Settings (time-outs, TLS files, user and password) come from the
/// environment and the configuration file, as described at
/// `etcd_open_opts`.
/// Returns NULL (see `etcd_errmsg`) for a NULL or empty list or bad settings.
/// Close the session with `etcd_close`.
#[no_mangle]
pub unsafe extern "C" fn etcd_open(server_list: *mut etcd_server) -> etcd_session {
    session_call(|| {
        // SAFETY: `server_list` is NULL or ends with a NULL host (this call's contract).
        let entries = unsafe { server_entries(server_list) }?;
        Client::with_options(endpoints(entries)?, &SecureOptions::default())
    })
}

/// The servers of an `etcd_server` list: a `port` of 0 keeps the default.
fn endpoints(entries: Vec<(&[u8], c_ushort)>) -> Result<Vec<Endpoint>, Error> {
    let mut servers = Vec::new();
    for (host, port) in entries {
        let host = std::str::from_utf8(host)
            .map_err(|_| Error::bad_argument("host name is not valid text"))?;
        let mut ep = parse_endpoint(host).map_err(Error::bad_argument)?;
        if port != 0 {
            ep.port = port;
        }
        servers.push(ep);
    }
    if servers.is_empty() {
        return Err(Error::bad_argument("server list is empty"));
    }
    Ok(servers)
}

/// Opens a session on a string of `host[:port]` items (also
/// `http://host:port`, `https://host:port`) separated by any of
/// `"\n\r\t ,;"`. The default port is 2379. Settings (time-outs, TLS
/// files, user and password) come from the environment and the
/// configuration file, as described at `etcd_open_opts`. Returns NULL (see `etcd_errmsg`) when nothing usable
/// is in the string, an item is malformed or a setting is bad. Close the
/// session with `etcd_close_str` (or `etcd_close`).
#[no_mangle]
pub unsafe extern "C" fn etcd_open_str(server_names: *mut c_char) -> etcd_session {
    session_call(|| {
        // SAFETY: `server_names` is NULL or a C string (this call's contract).
        let names = unsafe { bytes_arg(server_names, "server string") }?;
        Client::with_options(server_string(names)?, &SecureOptions::default())
    })
}

fn server_string(names: &[u8]) -> Result<Vec<Endpoint>, Error> {
    let names = std::str::from_utf8(names)
        .map_err(|_| Error::bad_argument("server string is not valid text"))?;
    parse_server_list(names).map_err(Error::bad_argument)
}

/// Ends a session and releases everything it holds (connections, streams,
/// threads). Closing NULL does nothing. Not to be called while another
/// thread is still inside a call on the same session.
#[no_mangle]
pub unsafe extern "C" fn etcd_close(session: etcd_session) {
    // SAFETY: `session` is NULL or an open session no other thread uses (this call's contract).
    close_call(|| drop(unsafe { take_session(session) }))
}

/// Ends a session opened with `etcd_open_str`; the same as `etcd_close`.
#[no_mangle]
pub unsafe extern "C" fn etcd_close_str(session: etcd_session) {
    // SAFETY: the same contract as etcd_close.
    unsafe { etcd_close(session) }
}

/// Returns a copy of `key`'s value ("" for an empty value); if the key has
/// no value but keys exist below it, its immediate children's paths,
/// sorted, joined by '\n'; otherwise NULL (see `etcd_errmsg`). The caller
/// frees the string with `free()`.
#[no_mangle]
pub unsafe extern "C" fn etcd_get(session: etcd_session, key: *mut c_char) -> *mut c_char {
    string_call(|| {
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, key) = unsafe { session_and_key(session, key) }?;
        s.client.get(key)?.ok_or_else(|| Error::not_found(key))
    })
}

/// Waits for the first change to `pfx` or to a key below `pfx/` at
/// revision >= `*index_in` (`index_in` NULL or <= 0: the next change from
/// now). On ETCD_OK writes the changed key to `*keyp`, its new value to
/// `*valuep` (NULL for a delete or expiry) and the change's revision to
/// `*index_out`; each may be NULL, and the strings are the caller's to
/// `free()`. Calling again with `*index_in = *index_out + 1` yields the
/// next change. ETCD_PROTOCOL_ERROR for a compacted revision or one above
/// INT_MAX.
#[no_mangle]
pub unsafe extern "C" fn etcd_watch(
    session: etcd_session,
    pfx: *mut c_char,
    keyp: *mut *mut c_char,
    valuep: *mut *mut c_char,
    index_in: *mut c_int,
    index_out: *mut c_int,
) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session, a C string or NULL, `index_in` NULL or readable (the contract).
        let ((s, pfx), from) = unsafe { (session_and_key(session, pfx)?, opt_read(index_in)) };
        let from = from.filter(|&i| i > 0).map(i64::from);
        let event = s.client.watch(pfx, from)?;
        let revision = c_int::try_from(event.revision).map_err(|_| {
            Error::refused(format!(
                "revision {} is above INT_MAX and cannot be returned",
                event.revision
            ))
        })?;
        // SAFETY: each out-pointer is NULL or writable (this call's contract).
        unsafe {
            put(keyp, || malloc_string(&event.key));
            put(valuep, || {
                event
                    .value
                    .as_deref()
                    .map_or(ptr::null_mut(), malloc_string)
            });
            put(index_out, || revision);
        }
        Ok(())
    })
}

/// Stores `value` under `key`. With `precond` non-NULL, only if the
/// current value equals it; with `ttl` > 0, for that many seconds.
/// ETCD_PROTOCOL_ERROR when etcd refused (compare failed, also for a
/// missing key; too large; not permitted); ETCD_WTF for NULL arguments or
/// when no server could be reached.
#[no_mangle]
pub unsafe extern "C" fn etcd_set(
    session: etcd_session,
    key: *mut c_char,
    value: *mut c_char,
    precond: *mut c_char,
    ttl: c_uint,
) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session, and C strings or NULL (this call's contract).
        let ((s, key), value, prev) = unsafe {
            (
                session_and_key(session, key)?,
                bytes_arg(value, "value")?,
                opt_bytes_arg(precond),
            )
        };
        s.client.set_with(key, value, prev, ttl)
    })
}

/// Deletes the single key `key`. ETCD_OK if a key was deleted,
/// ETCD_PROTOCOL_ERROR if there was none, ETCD_WTF for NULL arguments or
/// when no server could be reached.
#[no_mangle]
pub unsafe extern "C" fn etcd_delete(session: etcd_session, key: *mut c_char) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let (s, key) = unsafe { session_and_key(session, key) }?;
        s.client.delete(key)
    })
}

/// Returns the leader's member ID in lowercase hex (as etcd prints it),
/// for the caller to `free()`; NULL if it cannot be learned.
#[no_mangle]
pub unsafe extern "C" fn etcd_leader(session: etcd_session) -> *mut c_char {
    string_call(|| {
        // SAFETY: an open session or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        s.client.leader()
    })
}

/// With `index_in` NULL: takes the lock `key` for `ttl` seconds, waiting
/// while someone else holds it, and writes the lock's index (a string for
/// the caller to `free()`) to `*index_out`. With `index_in` set: renews
/// that hold; `*index_out` is set to NULL. ETCD_PROTOCOL_ERROR when the
/// lock was lost; ETCD_WTF for `ttl` 0 or bad arguments.
#[no_mangle]
pub unsafe extern "C" fn etcd_lock(
    session: etcd_session,
    key: *mut c_char,
    ttl: c_uint,
    index_in: *mut c_char,
    index_out: *mut *mut c_char,
) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session, and C strings or NULL (this call's contract).
        let ((s, key), renewing) =
            unsafe { (session_and_key(session, key)?, opt_bytes_arg(index_in)) };
        let index = match renewing {
            None => Some(s.client.lock(key, ttl)?),
            Some(index) => {
                s.client.renew(key, ttl, index)?;
                None
            }
        };
        let index = || index.map_or(ptr::null_mut(), |i| malloc_string(i.as_bytes()));
        // SAFETY: `index_out` is NULL or writable (this call's contract).
        unsafe { put(index_out, index) };
        Ok(())
    })
}

/// Releases the lock `key` held with `index` and ends its lease.
/// ETCD_PROTOCOL_ERROR if `index` does not hold `key`; ETCD_WTF if `index`
/// is NULL.
#[no_mangle]
pub unsafe extern "C" fn etcd_unlock(
    session: etcd_session,
    key: *mut c_char,
    index: *mut c_char,
) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session, and C strings or NULL (this call's contract).
        let ((s, key), index) = unsafe {
            (
                session_and_key(session, key)?,
                bytes_arg(index, "lock index")?,
            )
        };
        s.client.unlock(key, index)
    })
}

/// Describes the last failure of a call on the calling thread, in one
/// line ("" after a call that succeeded). The string belongs to the
/// library and stays valid until this thread's next call.
#[no_mangle]
pub extern "C" fn etcd_errmsg() -> *const c_char {
    // No boundary here: this only reads this thread's message, nothing in
    // it can panic, and clearing the message first (as every other call
    // does) would destroy what it returns.
    boundary::message_ptr()
}

/// TLS and authentication settings for `etcd_open_opts`. A NULL field
/// falls back to the environment: `ETCDAPI_CACERT`, `ETCDAPI_CERT`,
/// `ETCDAPI_KEY`, `ETCDAPI_USER`, `ETCDAPI_PASSWORD`, then etcdctl's
/// `ETCDCTL_*` of the same names, then the configuration file
/// (`ETCDAPI_CONFIG`, else `/etc/etcdapi.conf`). An empty string "" means
/// none, without looking at the environment or the file. The library
/// copies what it needs.
#[repr(C)]
pub struct etcd_options {
    /// PEM file of the CA that signs the servers' certificates (none: the
    /// system's root certificates).
    pub cacert: *const c_char,
    /// PEM file of the client certificate, for servers that ask for one
    /// (etcd --client-cert-auth); goes with `key`.
    pub cert: *const c_char,
    /// PEM file of the client certificate's private key (not encrypted).
    pub key: *const c_char,
    /// etcd user name; "name:password" when `password` is not given.
    pub user: *const c_char,
    /// The user's password.
    pub password: *const c_char,
}

/// Opens a session like `etcd_open_str`, with the TLS and authentication
/// settings in `opts` (NULL: all from the environment). With a CA or a
/// client certificate, servers written without a scheme are reached over
/// https. Certificate files are read and checked now; with a user, the
/// session logs in to etcd on its first call. Returns NULL (see
/// `etcd_errmsg`) for a bad server string or bad settings: a missing or
/// unreadable file, a key that does not match its certificate, a user
/// without a password. Close the session with `etcd_close`.
#[no_mangle]
pub unsafe extern "C" fn etcd_open_opts(
    server_names: *const c_char,
    opts: *const etcd_options,
) -> etcd_session {
    session_call(|| {
        // SAFETY: `opts` is NULL or a valid etcd_options (this call's contract).
        let options = unsafe { secure_options(opts) }?;
        // SAFETY: `server_names` is NULL or a C string (this call's contract).
        let names = unsafe { bytes_arg(server_names, "server string") }?;
        Client::with_options(server_string(names)?, &options)
    })
}

/// The settings of an `etcd_options`, the default for NULL.
///
/// # Safety
/// `opts` is NULL or a valid `etcd_options` whose fields are NULL or C strings.
unsafe fn secure_options(opts: *const etcd_options) -> Result<SecureOptions, Error> {
    // SAFETY: passed on from this function's own contract.
    let Some(o) = (unsafe { opt_ref(opts) }) else {
        return Ok(SecureOptions::default());
    };
    let field = |p: *const c_char, what: &str| -> Result<Option<String>, Error> {
        // SAFETY: each field is NULL or a C string (this function's contract).
        let Some(bytes) = (unsafe { opt_bytes_arg(p) }) else {
            return Ok(None);
        };
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(_) => Err(Error::bad_argument(format!(
                "etcd_options.{what} is not valid text"
            ))),
        }
    };
    Ok(SecureOptions {
        cacert: field(o.cacert, "cacert")?,
        cert: field(o.cert, "cert")?,
        key: field(o.key, "key")?,
        user: field(o.user, "user")?,
        password: field(o.password, "password")?,
    })
}

// The extended API (etcd v3): declared after the original calls, so the
// header lists them after the original ones.
mod extended;
// Leader election (etcd v3), after the rest of the extended API.
mod election;
// Transactions and fenced writes (SPEC section 8.3), after section 7.
mod txn;
