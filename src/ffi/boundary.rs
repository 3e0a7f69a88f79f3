//! Everything the C layer needs and nothing else: one wrapper per kind of
//! export (each the panic boundary and the error mapping of its calls), the
//! per-thread error message, and the checked reading and writing of the
//! pointers C passes in.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_ushort, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::etcd_result::{self, *};
use super::{etcd_server, etcd_session};
use crate::client::Client;
use crate::error::{Error, ErrorKind};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// An export that returns an `etcd_result`: `ETCD_OK`, else
/// `ETCD_PROTOCOL_ERROR` for a refusal from etcd, `ETCD_TIMEOUT` for a
/// caller's time-out that ran out (only the extended calls that take one
/// can give it) and `ETCD_WTF` for the rest.
pub fn result_call(body: impl FnOnce() -> Result<(), Error>) -> etcd_result {
    let code = |e: &Error| {
        if e.is_refusal() {
            ETCD_PROTOCOL_ERROR
        } else if e.kind() == ErrorKind::TimedOut {
            ETCD_TIMEOUT
        } else {
            ETCD_WTF
        }
    };
    run(|| body().map(|()| ETCD_OK), code, ETCD_WTF)
}

/// An export that returns a string: a malloc'd copy of the answer, NULL on
/// error.
pub fn string_call<B: AsRef<[u8]>>(body: impl FnOnce() -> Result<B, Error>) -> *mut c_char {
    let answer = || body().map(|b| malloc_string(b.as_ref()));
    run(answer, |_| ptr::null_mut(), ptr::null_mut())
}

/// An export that opens a session: the new handle, NULL on error.
pub fn session_call(body: impl FnOnce() -> Result<Client, Error>) -> etcd_session {
    let open = || body().map(|c| Box::into_raw(Session::new(c)) as etcd_session);
    run(open, |_| ptr::null_mut(), ptr::null_mut())
}

/// An export that closes a session: nothing to answer, nothing to report.
pub fn close_call(body: impl FnOnce()) {
    let close = || {
        body();
        Ok(())
    };
    run(close, |_| (), ())
}

/// Runs one exported call: clears this thread's message, runs `body`
/// behind the panic boundary (no panic crosses into C), and on `Err(e)`
/// sets the message from `e` and returns `on_error(&e)`; on a panic, says
/// so in the message and returns `on_panic`.
fn run<T>(
    body: impl FnOnce() -> Result<T, Error>,
    on_error: impl FnOnce(&Error) -> T,
    on_panic: T,
) -> T {
    set_message("");
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_error(&e);
            on_error(&e)
        }
        Err(panic) => {
            set_message(&format!("internal error: {}", panic_text(&*panic)));
            on_panic
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

pub fn set_message(msg: &str) {
    // A message with a NUL inside is cut there rather than lost.
    let bytes = msg.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let c = CString::new(&bytes[..end]).unwrap_or_default();
    LAST_ERROR.with(|m| *m.borrow_mut() = c);
}

fn set_error(e: &Error) {
    set_message(e.message());
}

/// The current thread's message; valid until this thread's next call.
pub fn message_ptr() -> *const c_char {
    LAST_ERROR.with(|m| m.borrow().as_ptr())
}

/// What an `etcd_session` points to.
///
/// The tag is a best-effort check, not a guarantee: it catches many
/// mistakes (a pointer that is not a session, a double close while the
/// freed memory has not been reused) before the pointer is used as a
/// session. Passing a closed session is still undefined behaviour: the
/// check itself reads freed memory.
pub struct Session {
    tag: u64,
    pub client: Client,
}

const SESSION_TAG: u64 = 0x6574_6364_6170_6931; // "etcdapi1"

impl Session {
    fn new(client: Client) -> Box<Session> {
        Box::new(Session {
            tag: SESSION_TAG,
            client,
        })
    }
}

/// The session behind a C handle, or an error for NULL / not a session.
///
/// # Safety
/// `s` is NULL or a handle from `etcd_open*` not yet closed.
pub unsafe fn session<'a>(s: *mut c_void) -> Result<&'a Session, Error> {
    let s = s as *const Session;
    // SAFETY: `s` is NULL or points to a live Session (the caller's contract).
    let Some(session) = (unsafe { s.as_ref() }) else {
        return Err(Error::bad_argument("session is NULL"));
    };
    if session.tag != SESSION_TAG {
        return Err(Error::bad_argument("not an open session"));
    }
    Ok(session)
}

/// The session and the key of a call on a key.
///
/// # Safety
/// As for [`session`] and [`bytes_arg`].
pub unsafe fn session_and_key<'a>(
    s: etcd_session,
    key: *const c_char,
) -> Result<(&'a Session, &'a [u8]), Error> {
    // SAFETY: passed on from this function's own contract.
    unsafe { Ok((session(s)?, bytes_arg(key, "key")?)) }
}

/// Takes a session back from C to drop it; None for NULL / not a session.
///
/// # Safety
/// As for [`session`].
pub unsafe fn take_session(s: *mut c_void) -> Option<Box<Session>> {
    // SAFETY: passed on from this function's own contract.
    unsafe { session(s) }.ok()?;
    // SAFETY: a tagged session came from Box::into_raw in `session_call`.
    let mut b = unsafe { Box::from_raw(s as *mut Session) };
    b.tag = 0;
    Some(b)
}

/// The bytes of a C string argument; `what` names it in the error.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub unsafe fn bytes_arg<'a>(p: *const c_char, what: &str) -> Result<&'a [u8], Error> {
    // SAFETY: passed on from this function's own contract.
    unsafe { opt_bytes_arg(p) }.ok_or_else(|| Error::bad_argument(format!("{what} is NULL")))
}

/// The bytes of a C string argument that may be NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub unsafe fn opt_bytes_arg<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: non-NULL `p` is a NUL-terminated string (the caller's contract).
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// The value `p` points to, or None for NULL.
///
/// # Safety
/// `p` is NULL or points to a valid `T`.
pub unsafe fn opt_read<T: Copy>(p: *const T) -> Option<T> {
    // SAFETY: non-NULL `p` points to a valid T (the caller's contract).
    unsafe { p.as_ref() }.copied()
}

/// The struct `p` points to, or None for NULL.
///
/// # Safety
/// `p` is NULL or points to a valid `T` that outlives the call.
pub unsafe fn opt_ref<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: non-NULL `p` points to a valid T (the caller's contract).
    unsafe { p.as_ref() }
}

/// Writes `value()` to `*out` unless `out` is NULL (then `value` is not
/// called, so nothing is allocated for nobody).
///
/// # Safety
/// `out` is NULL or valid for writing a `T`; its old value is not dropped.
pub unsafe fn put<T>(out: *mut T, value: impl FnOnce() -> T) {
    if !out.is_null() {
        // SAFETY: non-NULL `out` is writable (the caller's contract).
        unsafe { out.write(value()) }
    }
}

/// Largest `etcd_server` list we walk looking for its NULL-host end.
const MAX_SERVERS: usize = 4096;

/// The entries of an `etcd_server` array up to its NULL-host end (at most
/// [`MAX_SERVERS`]): each host's bytes and port.
///
/// # Safety
/// `list` is NULL or an array of entries ended by one whose `host` is
/// NULL, each other `host` a NUL-terminated string.
pub unsafe fn server_entries<'a>(
    list: *const etcd_server,
) -> Result<Vec<(&'a [u8], c_ushort)>, Error> {
    if list.is_null() {
        return Err(Error::bad_argument("server list is NULL"));
    }
    let mut entries = Vec::new();
    for i in 0..MAX_SERVERS {
        // SAFETY: entries up to the NULL-host end are readable (the caller's contract).
        let entry = unsafe { &*list.add(i) };
        // SAFETY: a non-NULL host is a NUL-terminated string (the caller's contract).
        let Some(host) = (unsafe { opt_bytes_arg(entry.host) }) else {
            break;
        };
        entries.push((host, entry.port));
    }
    Ok(entries)
}

/// A copy of `bytes` in memory from C's `malloc`, NUL-terminated, for the
/// caller to `free()`. NULL if malloc fails.
pub fn malloc_string(bytes: &[u8]) -> *mut c_char {
    // SAFETY: malloc'd memory of len + 1 bytes is written within bounds.
    unsafe {
        let p = libc::malloc(bytes.len() + 1) as *mut u8;
        if p.is_null() {
            set_message("out of memory");
            return ptr::null_mut();
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
        p as *mut c_char
    }
}
