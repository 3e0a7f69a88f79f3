//! etcd's v3 API through its HTTP/JSON gateway (`/v3/...`).
//!
//! Layout: `gateway` calls the gateway (with `auth`'s login around it) and
//! `status` reads its answers; `json` holds the wire types. On top of
//! them: `kv` (get, set, compare-and-swap, delete), `lease` (and the
//! threads keeping leases alive), `lock`, `watch` (kept streams,
//! reconnects), `maintenance` (the leader), and `revisions` (the extended
//! API's key/value calls), `election` (campaigns, leaders, observers).

mod auth;
pub(crate) mod election;
mod gateway;
mod history;
pub(crate) mod json;
mod kv;
mod lease;
pub(crate) mod lock;
mod maintenance;
mod revisions;
mod settle;
pub(crate) mod status;
mod txn;
pub(crate) mod watch;

use std::sync::Arc;
use std::time::Duration;

use gateway::Gateway;

use crate::config::Config;
use crate::error::Result;
use crate::kv::{Changes, Deleted, KeyValue, Leadership, LeaseTime, Listing};
use crate::protocol::{Event, Extended, LeaseKeeper, Protocol};
use crate::servers::Endpoint;
use crate::txn::{Compare, Op, TxnOutcome};

pub struct V3 {
    /// Shared with the threads keeping leases alive.
    gateway: Arc<Gateway>,
    /// `etcd_watch`'s streams.
    watches: watch::Streams,
    /// `watch_events`' streams (each read by a thread of its own).
    events: watch::Streams,
    /// `observe`'s streams (on the elections' candidate keys).
    observers: watch::Streams,
}

impl V3 {
    pub fn new(servers: Vec<Endpoint>, config: Config) -> Result<V3> {
        Ok(V3 {
            gateway: Arc::new(Gateway::new(servers, config)?),
            watches: watch::Streams::default(),
            events: watch::Streams::default(),
            observers: watch::Streams::default(),
        })
    }
}

impl Protocol for V3 {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        kv::get(&self.gateway, key)
    }

    fn put(&self, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
        kv::put(&self.gateway, key, value, ttl)
    }

    fn swap(&self, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
        kv::swap(&self.gateway, key, value, prev, ttl)
    }

    fn delete(&self, key: &[u8]) -> Result<bool> {
        kv::delete(&self.gateway, key)
    }

    fn leader(&self) -> Result<String> {
        maintenance::leader(&self.gateway)
    }

    fn watch(&self, prefix: &[u8], from: Option<i64>) -> Result<Event> {
        watch::watch(&self.gateway, &self.watches, prefix, from)
    }

    fn lock(&self, key: &[u8], ttl: u32) -> Result<String> {
        lock::lock(&self.gateway, key, ttl)
    }

    fn renew(&self, key: &[u8], ttl: u32, index: &str) -> Result<()> {
        lock::renew(&self.gateway, key, ttl, index)
    }

    fn unlock(&self, key: &[u8], index: &str) -> Result<()> {
        lock::unlock(&self.gateway, key, index)
    }

    fn release_streams(&self) {
        self.watches.clear();
        self.events.clear();
    }

    fn extended(&self) -> Option<&dyn Extended> {
        Some(self)
    }
}

impl Extended for V3 {
    fn get_kv(&self, key: &[u8]) -> Result<(Option<KeyValue>, i64)> {
        revisions::get_kv(&self.gateway, key)
    }

    fn list(&self, prefix: &[u8]) -> Result<Listing> {
        revisions::list(&self.gateway, prefix)
    }

    fn put(&self, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
        revisions::put(&self.gateway, key, value, lease)
    }

    fn put_if(&self, key: &[u8], value: &[u8], lease: i64, if_revision: i64) -> Result<i64> {
        revisions::put_if(&self.gateway, key, value, lease, if_revision)
    }

    fn delete_if(&self, key: &[u8], if_revision: Option<i64>) -> Result<i64> {
        revisions::delete_if(&self.gateway, key, if_revision)
    }

    fn txn(&self, compares: &[Compare], then: &[Op], otherwise: &[Op]) -> Result<TxnOutcome> {
        txn::txn(&self.gateway, compares, then, otherwise)
    }

    fn delete_prefix(&self, prefix: &[u8]) -> Result<Deleted> {
        revisions::delete_prefix(&self.gateway, prefix)
    }

    fn watch_events(
        &self,
        prefix: &[u8],
        from: Option<i64>,
        timeout: Option<Duration>,
    ) -> Result<Changes> {
        watch::watch_events(&self.gateway, &self.events, prefix, from, timeout)
    }

    fn lease_grant(&self, ttl: i64) -> Result<i64> {
        lease::grant_secs(&self.gateway, ttl)
    }

    fn lease_keepalive(&self, id: i64) -> Result<i64> {
        lease::refresh(&self.gateway, id)
    }

    fn lease_keep(&self, id: i64) -> Result<Box<dyn LeaseKeeper>> {
        Ok(Box::new(lease::keep(&self.gateway, id)?))
    }

    fn lease_ttl(&self, id: i64) -> Result<LeaseTime> {
        lease::time_to_live(&self.gateway, id)
    }

    fn lease_revoke(&self, id: i64) -> Result<()> {
        lease::revoke_known(&self.gateway, id)
    }

    fn campaign(
        &self,
        name: &[u8],
        value: &[u8],
        lease: i64,
        timeout: Option<Duration>,
    ) -> Result<Leadership> {
        election::campaign(&self.gateway, name, value, lease, timeout)
    }

    fn proclaim(&self, leadership: &Leadership, value: &[u8]) -> Result<i64> {
        election::proclaim(&self.gateway, leadership, value)
    }

    fn resign(&self, leadership: &Leadership) -> Result<()> {
        election::resign(&self.gateway, leadership)
    }

    fn election_leader(&self, name: &[u8]) -> Result<KeyValue> {
        election::leader(&self.gateway, name)
    }

    fn observe(
        &self,
        name: &[u8],
        from: Option<i64>,
        timeout: Option<Duration>,
    ) -> Result<KeyValue> {
        election::observe(&self.gateway, &self.observers, name, from, timeout)
    }
}
