//! Everything the C layer needs and nothing else: the panic boundary, the
//! per-thread error message, checked pointers and malloc'd strings.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::client::Client;
use crate::error::Error;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs one exported call: clears this thread's message, and turns a panic
/// into the call's own error value, so none crosses into C.
pub fn boundary<T>(on_panic: T, call: impl FnOnce() -> T) -> T {
    set_message("");
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(v) => v,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_message(&format!("internal error: {what}"));
            on_panic
        }
    }
}

pub fn set_message(msg: &str) {
    // A message with a NUL inside is cut there rather than lost.
    let bytes = msg.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let c = CString::new(&bytes[..end]).unwrap_or_default();
    LAST_ERROR.with(|m| *m.borrow_mut() = c);
}

pub fn set_error(e: &Error) {
    set_message(e.message());
}

/// The current thread's message; valid until this thread's next call.
pub fn message_ptr() -> *const c_char {
    LAST_ERROR.with(|m| m.borrow().as_ptr())
}

/// What an `etcd_session` points to. The tag catches a pointer that is not
/// a session (or one already closed) before it is used as one.
pub struct Session {
    tag: u64,
    pub client: Client,
}

const SESSION_TAG: u64 = 0x6574_6364_6170_6931; // "etcdapi1"

impl Session {
    pub fn new(client: Client) -> Box<Session> {
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
pub unsafe fn session<'a>(s: *mut std::ffi::c_void) -> Result<&'a Session, Error> {
    let s = s as *const Session;
    if s.is_null() {
        return Err(Error::bad_argument("session is NULL"));
    }
    let session = &*s;
    if session.tag != SESSION_TAG {
        return Err(Error::bad_argument("not an open session"));
    }
    Ok(session)
}

/// Takes a session back from C to drop it.
///
/// # Safety
/// As for [`session`].
pub unsafe fn take_session(s: *mut std::ffi::c_void) -> Option<Box<Session>> {
    session(s).ok()?;
    let mut b = Box::from_raw(s as *mut Session);
    b.tag = 0;
    Some(b)
}

/// The bytes of a C string argument; `what` names it in the error.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string.
pub unsafe fn bytes_arg<'a>(p: *const c_char, what: &str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return Err(Error::bad_argument(format!("{what} is NULL")));
    }
    Ok(CStr::from_ptr(p).to_bytes())
}

/// A copy of `bytes` in memory from C's `malloc`, NUL-terminated, for the
/// caller to `free()`. NULL if malloc fails.
pub fn malloc_string(bytes: &[u8]) -> *mut c_char {
    unsafe {
        let p = libc::malloc(bytes.len() + 1) as *mut u8;
        if p.is_null() {
            set_message("out of memory");
            return std::ptr::null_mut();
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        *p.add(bytes.len()) = 0;
        p as *mut c_char
    }
}
