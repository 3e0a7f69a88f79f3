//! etcd's v3 API through its HTTP/JSON gateway (`/v3/...`).
//!
//! Layout: `gateway` calls the gateway (with `auth`'s login around it) and
//! `status` reads its answers; `json` holds the wire types. On top of
//! them: `kv` (get, set, compare-and-swap, delete), `lease`, `lock`,
//! `watch` (kept streams, reconnects) and `maintenance` (the leader).

mod auth;
mod gateway;
mod json;
mod kv;
mod lease;
mod lock;
mod maintenance;
mod status;
mod watch;

use gateway::Gateway;

use crate::config::Config;
use crate::error::Result;
use crate::protocol::{Event, Protocol};
use crate::servers::Endpoint;

pub struct V3 {
    gateway: Gateway,
    watches: watch::Streams,
}

impl V3 {
    pub fn new(servers: Vec<Endpoint>, config: Config) -> Result<V3> {
        Ok(V3 {
            gateway: Gateway::new(servers, config)?,
            watches: watch::Streams::default(),
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
}
