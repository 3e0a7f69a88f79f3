//! Locks on etcd's lock service (`/v3/lock/lock`), each held by a lease.
//!
//! Acquiring grants a lease of the lock's ttl and keeps it alive from a
//! background thread while the lock call waits; once acquired the caller
//! renews, as with the original library. The lock's index is the lease ID
//! in lowercase hex, as etcdctl prints it.

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

use super::gateway::{probe, reply_rejects_token, Gateway};
use super::json::encode;
use super::status::{self, refusal};
use super::{kv, lease};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{lock_key, lock_name};
use crate::transport::{Opened, Reply, Request, Retry, Servers, Wait};

pub fn lock(g: &Gateway, key: &[u8], ttl: u32) -> Result<String> {
    let lease = lease::grant(g, ttl)?;
    let acquired = std::thread::scope(|scope| {
        let (stop, stopped) = mpsc::channel::<()>();
        // While we wait, nobody else renews the lease.
        let period = Duration::from_millis(u64::from(ttl.max(2)) * 1000 / 3);
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                let _ = lease::keep_alive(g, lease);
            }
        });
        let result = wait_for_lock(g, key, lease);
        drop(stop);
        result
    });
    match acquired {
        Ok(()) => Ok(hex(lease)),
        Err(e) => {
            // Leave nothing behind: the waiter key goes with the lease.
            let _ = lease::revoke(g, lease);
            Err(e)
        }
    }
}

/// Calls the lock service with our lease, waiting as long as the lock is
/// held by someone else. A cut connection (the member died) is repeated on
/// the next server: the same lease asking again is the same waiter.
fn wait_for_lock(g: &Gateway, key: &[u8], lease: i64) -> Result<()> {
    let name = lock_name(key);
    let body = serde_json::to_vec(&json!({"name": encode(&name), "lease": lease.to_string()}))
        .expect("json");
    let mut start = None;
    let mut failures = 0;
    loop {
        let request = Request::post("/v3/lock/lock", &body)
            .wait(Wait::Stream(None))
            .servers(start.map_or(Servers::Preferred, Servers::From));
        let opened = g.authorized(
            || {
                g.transport
                    .while_serving(None, probe(&name), || g.transport.open(&request))
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
            Ok(Opened::Stream(mut stream)) => {
                let mut answer = Vec::new();
                match stream.reader.read_to_end(&mut answer) {
                    Ok(_) => {
                        let reply = Reply {
                            status: 200,
                            headers: Default::default(),
                            body: answer,
                            server: stream.server.clone(),
                        };
                        let _: serde_json::Value = status::value(&reply)?;
                        return Ok(());
                    }
                    Err(e) => {
                        start = Some(stream.server_index + 1);
                        format!("{}: lock wait cut: {e}", stream.server)
                    }
                }
            }
            // No member could take the wait just now (an election after a
            // leader died): our lease is still kept alive, so wait on.
            Err(e) if e.kind() == ErrorKind::Unavailable => e.message().to_string(),
            Err(e) => return Err(e),
        };
        failures += 1;
        if failures > g.transport.servers().len() * 3 {
            return Err(Error::unavailable(failure));
        }
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

fn hex(lease: i64) -> String {
    format!("{:x}", lease as u64)
}

fn parse_index(index: &str) -> Result<i64> {
    match u64::from_str_radix(index.trim(), 16) {
        Ok(id) if id != 0 && index.len() <= 16 => Ok(id as i64),
        _ => Err(Error::refused(format!("{index:?} is not a lock index"))),
    }
}
