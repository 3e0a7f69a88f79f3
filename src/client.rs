//! [`Client`]: an etcd session, usable from Rust without the C layer.

use std::sync::Arc;

use crate::config::{Config, ProtocolKind, SecureOptions};
use crate::error::{Error, Result};
use crate::keys::{canonical, is_root};
use crate::protocol::{Event, Protocol};
use crate::servers::{parse_server_list, Endpoint};
use crate::shared;

/// A session on a list of etcd members. Safe to share between threads.
pub struct Client {
    /// Shared with every session of the process on the same servers with
    /// the same settings (see [`crate::shared`]).
    protocol: Arc<dyn Protocol>,
}

impl Client {
    /// A session on `servers` with explicit settings. A server written
    /// without a scheme is reached over https when `config` has a CA file
    /// or a client certificate, over http otherwise. TLS files are read
    /// and checked here (for https servers): a bad one is an error.
    pub fn new(mut servers: Vec<Endpoint>, config: Config) -> Result<Client> {
        if servers.is_empty() {
            return Err(Error::bad_argument("empty server list"));
        }
        if config.tls.any() {
            for s in servers.iter_mut().filter(|s| !s.scheme_given) {
                s.tls = true;
            }
        }
        let protocol = shared::protocol(servers, config, |servers, config| {
            Ok(match config.protocol {
                ProtocolKind::V3 => Arc::new(crate::v3::V3::new(servers, config)?),
                ProtocolKind::V2 => Arc::new(crate::v2::V2::new(servers, config)?),
            })
        })?;
        Ok(Client { protocol })
    }

    /// A session on a server string (`host:port` items separated by any of
    /// `\n\r\t ,;`), with settings from the `ETCDAPI_*` environment.
    pub fn open(server_names: &str) -> Result<Client> {
        let servers = parse_server_list(server_names).map_err(Error::bad_argument)?;
        Client::with_env(servers)
    }

    /// A session on `servers` with settings from the `ETCDAPI_*` environment.
    pub fn with_env(servers: Vec<Endpoint>) -> Result<Client> {
        Client::with_options(servers, &SecureOptions::default())
    }

    /// A session on `servers` with the program's TLS and authentication
    /// `options`, the rest (and any option left `None`) from the
    /// environment (see [`Config::from_env_with`]).
    pub fn with_options(servers: Vec<Endpoint>, options: &SecureOptions) -> Result<Client> {
        let config = Config::from_env_with(options).map_err(Error::bad_argument)?;
        Client::new(servers, config)
    }

    /// The value of `key`, or the listing of its children, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.protocol.get(&canonical(key.as_ref()))
    }

    /// Stores `value` under `key`.
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.set_with(key, value, None, 0)
    }

    /// Stores `value`, only if the current value is `prev` (when given),
    /// for `ttl` seconds (when > 0). A failed compare is an error of kind
    /// `CompareFailed` (also for a missing key).
    pub fn set_with(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        prev: Option<&[u8]>,
        ttl: u32,
    ) -> Result<()> {
        let key = canonical(key.as_ref());
        if is_root(&key) {
            return Err(Error::refused(
                "/ is the root directory: it cannot hold a value",
            ));
        }
        match prev {
            None => self.protocol.put(&key, value.as_ref(), ttl),
            Some(prev) => self.protocol.swap(&key, value.as_ref(), prev, ttl),
        }
    }

    /// Deletes `key`; an error of kind `NotFound` if it did not exist.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = canonical(key.as_ref());
        if self.protocol.delete(&key)? {
            Ok(())
        } else {
            Err(Error::not_found(&key))
        }
    }

    /// The leader's member ID in lowercase hex.
    pub fn leader(&self) -> Result<String> {
        self.protocol.leader()
    }

    /// Waits for the first change to `prefix` or below it at revision >=
    /// `from` (`None`: from now).
    pub fn watch(&self, prefix: impl AsRef<[u8]>, from: Option<i64>) -> Result<Event> {
        self.protocol.watch(&canonical(prefix.as_ref()), from)
    }

    /// Takes the lock `key` for `ttl` seconds; returns its index.
    pub fn lock(&self, key: impl AsRef<[u8]>, ttl: u32) -> Result<String> {
        check_lock_ttl(ttl)?;
        self.protocol.lock(&canonical(key.as_ref()), ttl)
    }

    /// Renews the lock `key` held with `index` for `ttl` seconds.
    pub fn renew(&self, key: impl AsRef<[u8]>, ttl: u32, index: impl AsRef<[u8]>) -> Result<()> {
        check_lock_ttl(ttl)?;
        let index = lock_index(index.as_ref())?;
        self.protocol.renew(&canonical(key.as_ref()), ttl, index)
    }

    /// Releases the lock `key` held with `index`.
    pub fn unlock(&self, key: impl AsRef<[u8]>, index: impl AsRef<[u8]>) -> Result<()> {
        let index = lock_index(index.as_ref())?;
        self.protocol.unlock(&canonical(key.as_ref()), index)
    }
}

/// A lock lives on a lease (v3) or a key TTL (v2): it needs a ttl.
fn check_lock_ttl(ttl: u32) -> Result<()> {
    if ttl == 0 {
        return Err(Error::bad_argument("lock ttl must be at least 1 second"));
    }
    Ok(())
}

/// A lock index is text (a lease ID in hex on v3, a decimal index on v2);
/// the protocol checks its form.
fn lock_index(index: &[u8]) -> Result<&str> {
    std::str::from_utf8(index).map_err(|_| Error::refused("lock index is not a lease ID"))
}
