//! One protocol object per process for each set of servers and settings.
//!
//! Programs that open a session per call (lookup functions, plugins, an
//! NSS module) would otherwise pay a new TCP connection, TLS handshake,
//! certificate parse and login every time. Sessions that name the same
//! servers with the same time-outs, TLS files and user share one protocol
//! object: its connections, parsed certificates, auth token and parked
//! watch streams. It lives while a session holds it; closing the last
//! session closes its connections. A session released with `free()`
//! instead of `etcd_close` keeps its object alive, and the next session
//! with the same settings picks it up again, so such a program keeps a
//! bounded set of connections rather than leaking one per session.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::config::{Config, ProtocolKind};
use crate::error::Result;
use crate::process::PerProcess;
use crate::protocol::Protocol;
use crate::servers::Endpoint;

/// What makes two sessions interchangeable.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    protocol: ProtocolKind,
    servers: Vec<(bool, String, u16)>,
    connect_timeout: std::time::Duration,
    request_timeout: std::time::Duration,
    tls: [Option<PathBuf>; 3],
    /// User and password.
    credentials: Option<(String, String)>,
}

impl Key {
    fn new(servers: &[Endpoint], config: &Config) -> Key {
        let path =
            |s: &Option<crate::config::Setting<PathBuf>>| s.as_ref().map(|s| s.value.clone());
        Key {
            protocol: config.protocol,
            servers: servers
                .iter()
                .map(|s| (s.tls, s.host.clone(), s.port))
                .collect(),
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            tls: [
                path(&config.tls.cacert),
                path(&config.tls.cert),
                path(&config.tls.key),
            ],
            credentials: config
                .credentials
                .as_ref()
                .map(|c| (c.user.clone(), c.password().to_string())),
        }
    }
}

type Registry = Mutex<HashMap<Key, Weak<dyn Protocol>>>;

/// This process's registry (a child starts an empty one: the parent's
/// lock may have been held at the fork).
fn registry() -> Arc<crate::process::Owned<Registry>> {
    static REGISTRY: OnceLock<PerProcess<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| PerProcess::new(Mutex::default()))
        .get(|_| Mutex::default())
}

/// The protocol object for `servers` with `config`: the one a live
/// session already uses, or a new one made by `make`.
pub fn protocol(
    servers: Vec<Endpoint>,
    config: Config,
    make: impl FnOnce(Vec<Endpoint>, Config) -> Result<Arc<dyn Protocol>>,
) -> Result<Arc<dyn Protocol>> {
    let key = Key::new(&servers, &config);
    let registry = registry();
    let mut live = registry.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shared) = live.get(&key).and_then(Weak::upgrade) {
        return Ok(shared);
    }
    live.retain(|_, weak| weak.strong_count() > 0);
    let made = make(servers, config)?;
    live.insert(key, Arc::downgrade(&made));
    Ok(made)
}
