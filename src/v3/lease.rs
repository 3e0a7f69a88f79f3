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

/// The mark in the top bits of the leases [`grant_for_key`] grants (bits
/// 62..48; bit 63 stays 0, IDs are positive).
const KEY_LEASE_MARK: i64 = 0x6574;

/// The 24 bits of a key that a lease granted for it carries (bits 47..24):
/// FNV-1a over the key's bytes, folded.
fn key_bits(key: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h ^ (h >> 24) ^ (h >> 48)) & 0xff_ffff) as i64
}

/// 24 random bits, never 0.
fn random_bits() -> i64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    let mut r = u64::from_ne_bytes(buf);
    if n != buf.len() as isize {
        // No getrandom: the clock and the process, which differ between
        // two callers often enough for an ID that is only retried on a clash.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        r = t ^ (u64::from(std::process::id()) << 32);
        r ^= r >> 29;
        r = r.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
    ((r & 0xff_ffff) as i64).max(1)
}

/// The ID [`grant_for_key`] asks for: the mark, the key's bits, random bits.
fn key_lease_id(key: &[u8]) -> i64 {
    (KEY_LEASE_MARK << 48) | (key_bits(key) << 24) | random_bits()
}

/// True when `id` has the form of a lease [`grant_for_key`] granted for
/// `key` (the mark and the key's bits).
pub fn made_for_key(id: i64, key: &[u8]) -> bool {
    id >> 48 == KEY_LEASE_MARK && (id >> 24) & 0xff_ffff == key_bits(key)
}

/// How many times [`grant_for_key`] asks for an ID of its own before it
/// lets etcd choose one.
const KEY_LEASE_TRIES: usize = 4;

/// Grants a lease of `ttl` seconds for the ttl'd set of `key`, with an ID
/// the library chooses ([`made_for_key`] then recognises it): so that a
/// later ttl'd set of the same key can tell the lease the key has is one
/// the library made for it, and revoke it once the key has left it.
///
/// etcd refuses an ID that exists ("lease already exists": another lease
/// has it, or an earlier copy of this request whose answer was lost got
/// through; that lease then expires on its own): a new ID is tried, and
/// after [`KEY_LEASE_TRIES`] refusals etcd chooses one ([`grant`]).
pub fn grant_for_key(g: &Gateway, ttl: u32, key: &[u8]) -> Result<i64> {
    for _ in 0..KEY_LEASE_TRIES {
        let id = key_lease_id(key);
        let r = g.call_status::<LeaseResponse>(
            "/v3/lease/grant",
            &json!({"TTL": ttl.to_string(), "ID": id.to_string()}),
            Retry::Always,
        )?;
        match r {
            Ok(r) if r.id == id => return Ok(id),
            Ok(r) => {
                return Err(Error::bad_response(format!(
                    "lease grant for ID {id} answered with ID {}",
                    r.id
                )))
            }
            Err(status) if status.message.contains("lease already exists") => continue,
            Err(status) => return Err(status.into()),
        }
    }
    grant(g, ttl)
}

/// How many keys are attached to `lease`; None when etcd no longer knows
/// it.
pub fn attached_keys(g: &Gateway, id: i64) -> Result<Option<usize>> {
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct WithKeys {
        #[serde(rename = "TTL", deserialize_with = "ttl")]
        ttl: i64,
        keys: Vec<serde_json::Value>,
    }
    fn ttl<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
        let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
        Ok(match v {
            serde_json::Value::String(s) => s.parse().unwrap_or(-1),
            serde_json::Value::Number(n) => n.as_i64().unwrap_or(-1),
            _ => 0,
        })
    }
    let r: WithKeys = g.call(
        "/v3/lease/timetolive",
        &json!({"ID": id.to_string(), "keys": true}),
        Retry::Always,
    )?;
    Ok((r.ttl >= 0).then_some(r.keys.len()))
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
