//! The C API's leader election (SPEC section 7, etcd v3 only). Each export
//! converts its arguments, calls [`crate::Client`] and copies the answer
//! out, inside `result_call` (the panic boundary). A leadership is handed
//! to C as an opaque malloc'd string ([`Leadership::to_token`]).

use std::ffi::{c_char, c_uint};
use std::ptr;
use std::time::Duration;

use super::boundary::{bytes_arg, malloc_string, put, result_call, session as session_of};
use super::extended::{etcd_kv, kv_array, required};
use super::{etcd_result, etcd_session};
use crate::client::Client;
use crate::error::Error;
use crate::kv::{KeyValue, Leadership};

/// Becomes the leader of `election` with the NUL-terminated `value` as its
/// proclamation, through etcd's election service, waiting while another
/// candidate leads. The candidacy lives on `lease` (from
/// `etcd_lease_grant`; keep it alive yourself or with `etcd_lease_keep`):
/// if the lease lapses, the leadership is lost. `election` is a name like
/// a key; etcd knows it as `/_elections/` + the name escaped as lock names
/// are, so `etcdctl elect /_elections/NAME` competes for the same
/// leadership. `timeout_ms` 0 waits for ever.
///
/// ETCD_OK with `*leadership` an opaque malloc'd string naming this
/// leadership, for `etcd_proclaim` and `etcd_resign` (`free()` it).
/// ETCD_TIMEOUT when the time ran out first: the candidacy is withdrawn
/// (another candidate can win at once). ETCD_PROTOCOL_ERROR when the lease
/// is gone. ETCD_WTF for a NULL session, election, value or `leadership`,
/// a lease of 0, a v2 session, or no server reachable.
#[no_mangle]
pub unsafe extern "C" fn etcd_campaign(
    session: etcd_session,
    election: *const c_char,
    value: *const c_char,
    lease: i64,
    timeout_ms: c_uint,
    leadership: *mut *mut c_char,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `leadership` is NULL or writable (this call's contract).
        unsafe { put(leadership, ptr::null_mut) };
        // SAFETY: an open session and C strings or NULL (this call's contract).
        let (s, election) = unsafe { (session_of(session)?, bytes_arg(election, "election")?) };
        // SAFETY: as above.
        let value = unsafe { bytes_arg(value, "value") }?;
        required(leadership, "leadership")?;
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let won = s.client.campaign(election, value, lease, Some(timeout))?;
        let token = malloc_string(won.to_token().as_bytes());
        if token.is_null() {
            // Nobody could resign a leadership we cannot name: give it up.
            let _ = s.client.resign(&won);
            return Err(Error::unavailable("out of memory"));
        }
        // SAFETY: as above.
        unsafe { put(leadership, || token) };
        Ok(())
    })
}

/// The leadership named by a string from `etcd_campaign`.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn leadership_arg(p: *const c_char) -> Result<Leadership, Error> {
    // SAFETY: passed on from this function's own contract.
    let text = unsafe { bytes_arg(p, "leadership") }?;
    Leadership::from_token(text).ok_or_else(|| {
        Error::bad_argument(format!(
            "{:?} is not a leadership from etcd_campaign",
            String::from_utf8_lossy(&text[..text.len().min(80)])
        ))
    })
}

/// Changes the leader's value to the NUL-terminated `value` without losing
/// the leadership. ETCD_OK; ETCD_PROTOCOL_ERROR when `leadership` no
/// longer leads (resigned, or its lease lapsed); ETCD_WTF for a NULL
/// session or value, or a `leadership` that is not one from
/// `etcd_campaign`.
#[no_mangle]
pub unsafe extern "C" fn etcd_proclaim(
    session: etcd_session,
    leadership: *const c_char,
    value: *const c_char,
) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session and C strings or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        // SAFETY: as above.
        let (won, value) = unsafe { (leadership_arg(leadership)?, bytes_arg(value, "value")?) };
        s.client.proclaim(&won, value).map(|_| ())
    })
}

/// Gives the leadership up: the next candidate leads at once. The string
/// stays the caller's to `free()`. ETCD_OK; ETCD_PROTOCOL_ERROR when it
/// was already lost; ETCD_WTF for a NULL session or a `leadership` that is
/// not one from `etcd_campaign`.
#[no_mangle]
pub unsafe extern "C" fn etcd_resign(
    session: etcd_session,
    leadership: *const c_char,
) -> etcd_result {
    result_call(|| {
        // SAFETY: an open session and a C string or NULL (this call's contract).
        let s = unsafe { session_of(session) }?;
        // SAFETY: as above.
        let won = unsafe { leadership_arg(leadership) }?;
        s.client.resign(&won)
    })
}

/// Who leads `election` now. ETCD_OK with `*leader` one etcd_kv (free it
/// with `etcd_kv_free(*leader, 1)`): its key is the leader's
/// (`/_elections/NAME/<lease hex>`), its value the proclamation, its
/// lease the leader's lease. ETCD_PROTOCOL_ERROR (`*leader` NULL) when
/// nobody leads; ETCD_WTF for a NULL session, election or `leader`.
#[no_mangle]
pub unsafe extern "C" fn etcd_election_leader(
    session: etcd_session,
    election: *const c_char,
    leader: *mut *mut etcd_kv,
) -> etcd_result {
    // SAFETY: passed on from this call's contract.
    unsafe { leader_call(session, election, leader, |c, e| c.election_leader(e)) }
}

/// Waits for the first leadership change of `election` (a new leader or a
/// new proclamation) at revision >= `from_revision`; `from_revision` <= 0:
/// the current leader, at once if there is one, else the next to come.
/// `timeout_ms` 0 waits for ever.
///
/// ETCD_OK with `*leader` one etcd_kv as from `etcd_election_leader`
/// (free it with `etcd_kv_free(*leader, 1)`), except that its
/// `mod_revision` is the revision of the change (for a candidate that took
/// over, the revision at which it came to lead): pass `mod_revision + 1`
/// next to miss and repeat nothing. ETCD_TIMEOUT (`*leader` NULL) when the
/// time ran out; ETCD_PROTOCOL_ERROR for a compacted `from_revision`;
/// ETCD_WTF for a NULL session, election or `leader`. The wait moves to
/// another member, from where it was, when one dies.
#[no_mangle]
pub unsafe extern "C" fn etcd_observe(
    session: etcd_session,
    election: *const c_char,
    from_revision: i64,
    timeout_ms: c_uint,
    leader: *mut *mut etcd_kv,
) -> etcd_result {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    // SAFETY: passed on from this call's contract.
    unsafe {
        leader_call(session, election, leader, |c, e| {
            c.observe(e, Some(from_revision), Some(timeout))
        })
    }
}

/// The body of the calls that answer one leader: `ask` the session's
/// client about the election, hand the answer out as a one-element array.
///
/// # Safety
/// `session` is NULL or open, `election` NULL or a C string, `leader`
/// NULL or writable.
unsafe fn leader_call(
    session: etcd_session,
    election: *const c_char,
    leader: *mut *mut etcd_kv,
    ask: impl FnOnce(&Client, &[u8]) -> Result<KeyValue, Error>,
) -> etcd_result {
    result_call(|| {
        // SAFETY: `leader` is NULL or writable (this function's contract).
        unsafe { put(leader, ptr::null_mut) };
        // SAFETY: an open session and a C string or NULL (as above).
        let (s, election) = unsafe { (session_of(session)?, bytes_arg(election, "election")?) };
        required(leader, "leader")?;
        let kv = ask(&s.client, election)?;
        let array = kv_array(std::slice::from_ref(&kv))?;
        // SAFETY: as above.
        unsafe { put(leader, || array) };
        Ok(())
    })
}
