//! The C API of the original `etcd-api` header: pointers in, malloc'd
//! strings out, every call behind a panic boundary. Behaviour lives in
//! [`crate::Client`]; this layer only converts.

#![allow(non_camel_case_types, clippy::missing_safety_doc)]

mod boundary;

use std::ffi::{c_char, c_int, c_uint, c_ushort, c_void, CStr};
use std::ptr;

use boundary::{
    boundary, bytes_arg, malloc_string, session as session_of, set_error, set_message,
    take_session, Session,
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
}

use etcd_result::*;

/// One server of the list given to `etcd_open`; the list ends with an
/// entry whose `host` is NULL. A `port` of 0 means the default, 2379.
#[repr(C)]
pub struct etcd_server {
    pub host: *mut c_char,
    pub port: c_ushort,
}

/// An open session (opaque).
pub type etcd_session = *mut c_void;

/// Largest `etcd_server` list we walk looking for its NULL-host end.
const MAX_SERVERS: usize = 4096;

fn result_of(r: Result<(), Error>) -> etcd_result {
    match r {
        Ok(()) => ETCD_OK,
        Err(e) => {
            set_error(&e);
            if e.is_refusal() {
                ETCD_PROTOCOL_ERROR
            } else {
                ETCD_WTF
            }
        }
    }
}

fn open_session(servers: Result<Vec<Endpoint>, String>) -> etcd_session {
    open_session_with(servers, &SecureOptions::default())
}

fn open_session_with(
    servers: Result<Vec<Endpoint>, String>,
    options: &SecureOptions,
) -> etcd_session {
    let client = servers
        .map_err(Error::bad_argument)
        .and_then(|s| Client::with_options(s, options));
    match client {
        Ok(c) => Box::into_raw(Session::new(c)) as etcd_session,
        Err(e) => {
            set_error(&e);
            ptr::null_mut()
        }
    }
}

/// Opens a session on `server_list`, an array ended by an entry whose
/// `host` is NULL. The list is copied; the caller keeps ownership.
/// Settings (time-outs, TLS files, user and password) come from the
/// environment, as described at `etcd_open_opts`.
/// Returns NULL (see `etcd_errmsg`) for a NULL or empty list or bad settings.
/// Close the session with `etcd_close`.
#[no_mangle]
pub unsafe extern "C" fn etcd_open(server_list: *mut etcd_server) -> etcd_session {
    boundary(ptr::null_mut(), || {
        open_session((|| {
            if server_list.is_null() {
                return Err("server list is NULL".to_string());
            }
            let mut servers = Vec::new();
            for i in 0..MAX_SERVERS {
                let entry = &*server_list.add(i);
                if entry.host.is_null() {
                    break;
                }
                let host = CStr::from_ptr(entry.host)
                    .to_str()
                    .map_err(|_| "host name is not valid text".to_string())?;
                let mut ep = parse_endpoint(host)?;
                if entry.port != 0 {
                    ep.port = entry.port;
                }
                servers.push(ep);
            }
            if servers.is_empty() {
                return Err("server list is empty".to_string());
            }
            Ok(servers)
        })())
    })
}

/// Opens a session on a string of `host[:port]` items (also
/// `http://host:port`, `https://host:port`) separated by any of
/// `"\n\r\t ,;"`. The default port is 2379. Settings (time-outs, TLS
/// files, user and password) come from the environment, as described at
/// `etcd_open_opts`. Returns NULL (see `etcd_errmsg`) when nothing usable
/// is in the string, an item is malformed or a setting is bad. Close the
/// session with `etcd_close_str` (or `etcd_close`).
#[no_mangle]
pub unsafe extern "C" fn etcd_open_str(server_names: *mut c_char) -> etcd_session {
    boundary(ptr::null_mut(), || {
        open_session(server_string(server_names))
    })
}

unsafe fn server_string(server_names: *const c_char) -> Result<Vec<Endpoint>, String> {
    match bytes_arg(server_names, "server string") {
        Err(e) => Err(e.message().to_string()),
        Ok(b) => match std::str::from_utf8(b) {
            Ok(s) => parse_server_list(s),
            Err(_) => Err("server string is not valid text".to_string()),
        },
    }
}

/// Ends a session and releases everything it holds (connections, streams,
/// threads). Closing NULL does nothing. Not to be called while another
/// thread is still inside a call on the same session.
#[no_mangle]
pub unsafe extern "C" fn etcd_close(session: etcd_session) {
    boundary((), || drop(take_session(session)))
}

/// Ends a session opened with `etcd_open_str`; the same as `etcd_close`.
#[no_mangle]
pub unsafe extern "C" fn etcd_close_str(session: etcd_session) {
    etcd_close(session)
}

/// Returns a copy of `key`'s value ("" for an empty value); if the key has
/// no value but keys exist below it, its immediate children's paths,
/// sorted, joined by '\n'; otherwise NULL (see `etcd_errmsg`). The caller
/// frees the string with `free()`.
#[no_mangle]
pub unsafe extern "C" fn etcd_get(session: etcd_session, key: *mut c_char) -> *mut c_char {
    boundary(ptr::null_mut(), || {
        let got = session_and_key(session, key).and_then(|(s, k)| s.client.get(k));
        match got {
            Ok(Some(value)) => malloc_string(&value),
            Ok(None) => {
                set_message(&format!(
                    "key {} not found",
                    String::from_utf8_lossy(CStr::from_ptr(key).to_bytes())
                ));
                ptr::null_mut()
            }
            Err(e) => {
                set_error(&e);
                ptr::null_mut()
            }
        }
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
    boundary(ETCD_WTF, || {
        result_of((|| {
            let (s, pfx) = session_and_key(session, pfx)?;
            let from = if index_in.is_null() || *index_in <= 0 {
                None
            } else {
                Some(i64::from(*index_in))
            };
            let event = s.client.watch(pfx, from)?;
            let revision = c_int::try_from(event.revision).map_err(|_| {
                Error::refused(format!(
                    "revision {} is above INT_MAX and cannot be returned",
                    event.revision
                ))
            })?;
            if !keyp.is_null() {
                *keyp = malloc_string(&event.key);
            }
            if !valuep.is_null() {
                *valuep = event
                    .value
                    .as_deref()
                    .map_or(ptr::null_mut(), malloc_string);
            }
            if !index_out.is_null() {
                *index_out = revision;
            }
            Ok(())
        })())
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
    boundary(ETCD_WTF, || {
        result_of((|| {
            let (s, key) = session_and_key(session, key)?;
            let value = bytes_arg(value, "value")?;
            let prev = if precond.is_null() {
                None
            } else {
                Some(CStr::from_ptr(precond).to_bytes())
            };
            s.client.set_with(key, value, prev, ttl)
        })())
    })
}

/// Deletes the single key `key`. ETCD_OK if a key was deleted,
/// ETCD_PROTOCOL_ERROR if there was none, ETCD_WTF for NULL arguments or
/// when no server could be reached.
#[no_mangle]
pub unsafe extern "C" fn etcd_delete(session: etcd_session, key: *mut c_char) -> etcd_result {
    boundary(ETCD_WTF, || {
        result_of(session_and_key(session, key).and_then(|(s, k)| s.client.delete(k)))
    })
}

/// Returns the leader's member ID in lowercase hex (as etcd prints it),
/// for the caller to `free()`; NULL if it cannot be learned.
#[no_mangle]
pub unsafe extern "C" fn etcd_leader(session: etcd_session) -> *mut c_char {
    boundary(ptr::null_mut(), || {
        match session_of(session).and_then(|s| s.client.leader()) {
            Ok(id) => malloc_string(id.as_bytes()),
            Err(e) => {
                set_error(&e);
                ptr::null_mut()
            }
        }
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
    boundary(ETCD_WTF, || {
        result_of((|| {
            let (s, key) = session_and_key(session, key)?;
            if ttl == 0 {
                return Err(Error::bad_argument("lock ttl must be at least 1 second"));
            }
            if index_in.is_null() {
                let index = s.client.lock(key, ttl)?;
                if !index_out.is_null() {
                    *index_out = malloc_string(index.as_bytes());
                }
                return Ok(());
            }
            let index = index_str(index_in)?;
            s.client.renew(key, ttl, index)?;
            if !index_out.is_null() {
                *index_out = ptr::null_mut();
            }
            Ok(())
        })())
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
    boundary(ETCD_WTF, || {
        result_of((|| {
            let (s, key) = session_and_key(session, key)?;
            s.client.unlock(key, index_str(index)?)
        })())
    })
}

/// Describes the last failure of a call on the calling thread, in one
/// line ("" after a call that succeeded). The string belongs to the
/// library and stays valid until this thread's next call.
#[no_mangle]
pub extern "C" fn etcd_errmsg() -> *const c_char {
    boundary::message_ptr()
}

/// TLS and authentication settings for `etcd_open_opts`. A NULL field
/// falls back to the environment: `ETCDAPI_CACERT`, `ETCDAPI_CERT`,
/// `ETCDAPI_KEY`, `ETCDAPI_USER`, `ETCDAPI_PASSWORD`, then etcdctl's
/// `ETCDCTL_*` of the same names. An empty string "" means none, without
/// looking at the environment. The library copies what it needs.
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
    boundary(ptr::null_mut(), || {
        let options = match secure_options(opts) {
            Ok(o) => o,
            Err(e) => {
                set_error(&e);
                return ptr::null_mut();
            }
        };
        open_session_with(server_string(server_names), &options)
    })
}

unsafe fn secure_options(opts: *const etcd_options) -> Result<SecureOptions, Error> {
    if opts.is_null() {
        return Ok(SecureOptions::default());
    }
    let o = &*opts;
    let field = |p: *const c_char, what: &str| -> Result<Option<String>, Error> {
        if p.is_null() {
            return Ok(None);
        }
        match CStr::from_ptr(p).to_str() {
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

unsafe fn session_and_key<'a>(
    s: etcd_session,
    key: *const c_char,
) -> Result<(&'a Session, &'a [u8]), Error> {
    Ok((session_of(s)?, bytes_arg(key, "key")?))
}

unsafe fn index_str<'a>(index: *const c_char) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes_arg(index, "lock index")?)
        .map_err(|_| Error::refused("lock index is not a lease ID"))
}
