//! Locks on etcd's lock service (`/v3/lock/lock`), each held by a lease.
//!
//! Acquiring grants a lease of the lock's ttl and keeps it alive from a
//! background thread while the lock call waits; once acquired the caller
//! renews, as with the original library. The lock's index is the lease ID
//! in lowercase hex, as etcdctl prints it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use super::gateway::{probe, read_answer, reply_rejects_token, Gateway};
use super::json::encode;
use super::status::{self, refusal};
use super::{kv, lease};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{lock_key, lock_name};
use crate::transport::{Opened, Request, Retry, Servers, Wait};

pub fn lock(g: &Gateway, key: &[u8], ttl: u32) -> Result<String> {
    // The lease the wait uses now: a wait given up on one member goes on
    // elsewhere with a new one (see `wait_for_lock`).
    let current = AtomicI64::new(lease::grant(g, ttl)?);
    let acquired = std::thread::scope(|scope| {
        let (stop, stopped) = mpsc::channel::<()>();
        // While we wait, nobody else renews the lease.
        let period = Duration::from_millis(u64::from(ttl.max(2)) * 1000 / 3);
        let current = &current;
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                let _ = lease::keep_alive(g, current.load(Ordering::SeqCst));
            }
        });
        let result = wait_for_lock(g, key, ttl, current);
        drop(stop);
        result
    });
    let lease = current.load(Ordering::SeqCst);
    match acquired {
        Ok(()) => Ok(hex(lease)),
        Err(e) => {
            // Leave nothing behind: the waiter key goes with the lease.
            let _ = lease::revoke(g, lease);
            Err(e)
        }
    }
}

/// Calls the lock service with the current lease, waiting as long as the
/// lock is held by someone else, one member at a time. A wait cut (the
/// member died) or given up (the member no longer serves: cut off from its
/// cluster) goes on at the next member with a NEW lease, the old one
/// revoked: the abandoned wait may still hold a waiter key for the old
/// lease there, and etcd's clean-up of it (a delete of `name/lease`,
/// applied whenever that member gets back to its cluster) must not be able
/// to remove the key of the lock we then hold.
fn wait_for_lock(g: &Gateway, key: &[u8], ttl: u32, current: &AtomicI64) -> Result<()> {
    let name = lock_name(key);
    let servers = g.transport.servers().len();
    let mut member = g.transport.preferred();
    let mut failures = 0;
    loop {
        let lease = current.load(Ordering::SeqCst);
        let body = serde_json::to_vec(&json!({"name": encode(&name), "lease": lease.to_string()}))
            .expect("json");
        let request = Request::post("/v3/lock/lock", &body)
            .wait(Wait::Stream(None))
            .servers(Servers::Only(member));
        let opened = g.authorized(
            || {
                g.transport
                    .while_serving(Some(member), probe(&name), || g.transport.open(&request))
            },
            |o| matches!(o, Opened::Answer(reply) if reply_rejects_token(reply)),
        );
        let failure = match opened {
            Ok(Opened::Answer(reply)) => {
                return Err(match refusal(&reply) {
                    e if e.is_refusal() => e,
                    _ => Error::refused(reply.to_string()),
                })
            }
            Ok(Opened::Stream(mut stream)) => match read_answer(&mut stream) {
                Ok(reply) => {
                    let _: serde_json::Value = status::value(&reply)?;
                    return Ok(());
                }
                Err(e) => format!("{}: lock wait cut: {e}", stream.server),
            },
            // The member could not take the wait (down, or no leader after
            // one died): our lease is still kept alive, so wait on.
            Err(e) if e.kind() == ErrorKind::Unavailable => e.message().to_string(),
            Err(e) => return Err(e),
        };
        failures += 1;
        if failures > servers * 3 {
            return Err(Error::unavailable(failure));
        }
        // A new lease for the next member (if one can be had now; else
        // the old one, still kept alive, will do).
        if let Ok(fresh) = lease::grant(g, ttl) {
            let old = current.swap(fresh, Ordering::SeqCst);
            let _ = lease::revoke(g, old);
        }
        member = (member + 1) % servers;
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn renew(g: &Gateway, key: &[u8], _ttl: u32, index: &str) -> Result<()> {
    let lease = parse_index(index)?;
    // Check first, so that another lock's index is refused before its
    // lease is extended.
    ensure_held(g, key, lease)?;
    if lease::keep_alive(g, lease)? <= 0 {
        return Err(Error::refused(format!(
            "lock lost: its lease {index} has expired or was revoked"
        )));
    }
    Ok(())
}

pub fn unlock(g: &Gateway, key: &[u8], index: &str) -> Result<()> {
    let lease = parse_index(index)?;
    ensure_held(g, key, lease)?;
    let held = encode(&lock_key(key, &hex(lease)));
    let _: serde_json::Value = g.call("/v3/lock/unlock", &json!({"key": held}), Retry::Always)?;
    lease::revoke(g, lease)
}

/// etcd's own unlock says OK for anything: check the lock key is there and
/// still ours before trusting it.
fn ensure_held(g: &Gateway, key: &[u8], lease: i64) -> Result<()> {
    let k = lock_key(key, &hex(lease));
    if kv::read(g, &k)?.is_some_and(|kv| kv.lease == lease) {
        return Ok(());
    }
    Err(Error::refused(format!(
        "lock {} is not held by index {}",
        String::from_utf8_lossy(key),
        hex(lease)
    )))
}

pub(crate) fn hex(lease: i64) -> String {
    format!("{:x}", lease as u64)
}

pub(crate) fn parse_index(index: &str) -> Result<i64> {
    match u64::from_str_radix(index.trim(), 16) {
        Ok(id) if id != 0 && index.len() <= 16 => Ok(id as i64),
        _ => Err(Error::refused(format!("{index:?} is not a lock index"))),
    }
}
