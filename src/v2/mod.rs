//! etcd's legacy v2 keys API (`/v2/keys/...`), for clusters whose data
//! still lives in the v2 store (etcd keeps the v2 and v3 stores apart).
//!
//! v2 carries keys and values as JSON strings, so both must be UTF-8:
//! other bytes are refused with an error of kind `BadArgument` rather
//! than silently changed. Keys go into URLs percent-encoded segment by
//! segment; form fields are percent-encoded and joined with `&`.
//!
//! Layout: `wire` (error codes, refusals, key paths, forms) and `json`
//! (answer types) under `kv` (get, set, compare-and-swap, delete),
//! `watch` (long polls), `lock` (built from in-order keys and waits) and
//! `maintenance` (the leader).

pub(crate) mod json;
mod kv;
pub(crate) mod lock;
mod maintenance;
mod watch;
pub(crate) mod wire;

use crate::config::Config;
use crate::error::Result;
use crate::protocol::{Event, Protocol};
use crate::servers::Endpoint;
use crate::transport::Transport;

pub struct V2 {
    transport: Transport,
}

impl V2 {
    /// A v2 session. etcd's v3 authentication does not cover the v2
    /// API: credentials in `config` are not used.
    pub fn new(servers: Vec<Endpoint>, config: Config) -> Result<V2> {
        Ok(V2 {
            transport: Transport::new(servers, config, wire::member_unavailable)?,
        })
    }
}

impl Protocol for V2 {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        kv::get(&self.transport, key)
    }

    fn put(&self, key: &[u8], value: &[u8], ttl: u32) -> Result<()> {
        kv::put(&self.transport, key, value, ttl)
    }

    fn swap(&self, key: &[u8], value: &[u8], prev: &[u8], ttl: u32) -> Result<()> {
        kv::swap(&self.transport, key, value, prev, ttl)
    }

    fn delete(&self, key: &[u8]) -> Result<bool> {
        kv::delete(&self.transport, key)
    }

    fn leader(&self) -> Result<String> {
        maintenance::leader(&self.transport)
    }

    fn watch(&self, prefix: &[u8], from: Option<i64>) -> Result<Event> {
        watch::watch(&self.transport, prefix, from)
    }

    fn lock(&self, key: &[u8], ttl: u32) -> Result<String> {
        lock::lock(&self.transport, key, ttl)
    }

    fn renew(&self, key: &[u8], ttl: u32, index: &str) -> Result<()> {
        lock::renew(&self.transport, key, ttl, index)
    }

    fn unlock(&self, key: &[u8], index: &str) -> Result<()> {
        lock::unlock(&self.transport, key, index)
    }
}
