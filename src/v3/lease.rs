//! Leases: grant, one-shot keep-alive, time to live, revoke; and the
//! session's keepers, threads that refresh a lease until it is revoked,
//! the session ends, or the lease is lost.

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use super::gateway::Gateway;
use super::json::LeaseResponse;
use super::status::Code;
use crate::error::{Error, ErrorKind, Result};
use crate::kv::LeaseTime;
use crate::protocol::LeaseKeeper;
use crate::transport::Retry;

/// Grants a lease of `ttl` seconds. Resending is harmless: a lease granted
/// by a lost first attempt expires on its own.
pub fn grant(g: &Gateway, ttl: u32) -> Result<i64> {
    grant_secs(g, i64::from(ttl))
}

/// [`grant`] for the extended API's 64-bit ttl.
pub fn grant_secs(g: &Gateway, ttl: i64) -> Result<i64> {
    let r: LeaseResponse = g.call(
        "/v3/lease/grant",
        &json!({"TTL": ttl.to_string()}),
        Retry::Always,
    )?;
    if r.id == 0 {
        return Err(Error::bad_response("lease grant answered without an ID"));
    }
    Ok(r.id)
}

/// One keep-alive; returns the lease's new TTL, 0 when the lease is gone
/// (etcd answers 200 with no TTL for an unknown or expired lease).
pub fn keep_alive(g: &Gateway, id: i64) -> Result<i64> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct KeepAlive {
        result: LeaseResponse,
    }
    let r: KeepAlive = g.call(
        "/v3/lease/keepalive",
        &json!({"ID": id.to_string()}),
        Retry::Always,
    )?;
    Ok(r.result.ttl)
}

/// Revokes a lease (deleting the keys attached to it). A lease that is
/// already gone is not an error here.
pub fn revoke(g: &Gateway, id: i64) -> Result<()> {
    match revoke_known(g, id) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The error for a lease etcd no longer knows.
fn gone(id: i64) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "lease {id} ({:x}) is gone: expired, revoked or never granted",
            id as u64
        ),
    )
}

/// One keep-alive; the seconds granted again, `NotFound` once it is gone.
pub fn refresh(g: &Gateway, id: i64) -> Result<i64> {
    match keep_alive(g, id)? {
        ttl if ttl > 0 => Ok(ttl),
        _ => Err(gone(id)),
    }
}

/// How long the lease has left (etcd answers TTL -1 for one it no longer
/// knows).
pub fn time_to_live(g: &Gateway, id: i64) -> Result<LeaseTime> {
    let r: LeaseResponse = g.call(
        "/v3/lease/timetolive",
        &json!({"ID": id.to_string()}),
        Retry::Always,
    )?;
    if r.ttl < 0 {
        return Err(gone(id));
    }
    Ok(LeaseTime {
        remaining: r.ttl,
        granted: r.granted_ttl,
    })
}

/// Revokes a lease the caller names: `NotFound` if etcd does not know it.
pub fn revoke_known(g: &Gateway, id: i64) -> Result<()> {
    let revoked = g.call_status::<serde_json::Value>(
        "/v3/lease/revoke",
        &json!({"ID": id.to_string()}),
        Retry::Always,
    )?;
    match revoked {
        Ok(_) => Ok(()),
        Err(status) if status.code == Code::NotFound => Err(gone(id)),
        Err(status) => Err(status.into()),
    }
}

/// A thread keeping one lease alive. Dropping it stops the thread (in
/// the process that started it: a child after fork() has no such thread,
/// so it forgets the handle instead of joining it).
pub struct Keeper {
    /// Dropped to stop the thread.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    pid: u32,
}

impl LeaseKeeper for Keeper {
    fn ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            std::mem::forget(self.stop.take());
            std::mem::forget(self.thread.take());
            return;
        }
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keeps `id` alive from a thread of its own, refreshing at a third of
/// its TTL; `NotFound` if the lease is already gone.
pub fn keep(g: &Arc<Gateway>, id: i64) -> Result<Keeper> {
    let ttl = refresh(g, id)?;
    let (stop, stopped) = mpsc::channel();
    let g = Arc::clone(g);
    let thread = std::thread::Builder::new()
        .name(format!("etcd-lease-{id:x}"))
        .spawn(move || keep_refreshing(&g, id, ttl, &stopped))
        .map_err(|e| Error::unavailable(format!("cannot start a lease thread: {e}")))?;
    Ok(Keeper {
        stop: Some(stop),
        thread: Some(thread),
        pid: std::process::id(),
    })
}

/// A third of `ttl` seconds: when to refresh next.
fn third_of(ttl: i64) -> Duration {
    Duration::from_millis((ttl.max(1) as u64).saturating_mul(1000) / 3)
}

/// The keeper's loop: refresh every third of the TTL (sooner again after
/// a failed attempt) until stopped, or until the lease is gone or can no
/// longer be refreshed before it expires.
fn keep_refreshing(g: &Gateway, id: i64, ttl: i64, stopped: &mpsc::Receiver<()>) {
    let mut expires = Instant::now() + Duration::from_secs(ttl as u64);
    let mut wait = third_of(ttl);
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
        match refresh(g, id) {
            Ok(ttl) => {
                expires = Instant::now() + Duration::from_secs(ttl as u64);
                wait = third_of(ttl);
            }
            Err(e) if e.is_refusal() => return,
            // No member answered: try again soon, while it can still help.
            Err(_) => match expires.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => wait = left.min(Duration::from_millis(500)),
                _ => return,
            },
        }
    }
}
