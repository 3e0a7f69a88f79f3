//! One protocol object per process for each set of servers and settings.
//!
//! Programs that open a session per call (lookup functions, plugins, an
//! NSS module) would otherwise pay a new TCP connection, TLS handshake,
//! certificate parse and login every time. Sessions that name the same
//! servers with the same time-outs, TLS files and user share one protocol
//! object: its connections, parsed certificates, auth token and parked
//! watch streams. It lives while a session holds it, and for two minutes
//! after the last one closed (without that session's parked watch
//! streams): a program that opens and closes a session per call finds its
//! connections again. A session released with `free()`
//! instead of `etcd_close` keeps its object alive, and the next session
//! with the same settings picks it up again, so such a program keeps a
//! bounded set of connections rather than leaking one per session.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

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

/// How long a protocol object outlives its last session: what a program
/// that opens a session per call needs to find it again, as long as ureq
/// keeps an idle connection.
const LINGER: Duration = Duration::from_secs(120);

/// One set of settings: the object while sessions use it, and the object
/// kept after its last session closed (with the time it closed).
struct Entry {
    live: Weak<dyn Protocol>,
    kept: Option<(Arc<dyn Protocol>, Instant)>,
}

type Registry = Mutex<HashMap<Key, Entry>>;

/// This process's registry (a child starts an empty one: the parent's
/// lock may have been held at the fork).
fn registry() -> Arc<crate::process::Owned<Registry>> {
    static REGISTRY: OnceLock<PerProcess<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| PerProcess::new(Mutex::default()))
        .get(|_| Mutex::default())
}

/// Takes out of `entries` what no session uses and nobody asked for in
/// `LINGER`, to be dropped by the caller outside the lock (dropping closes
/// connections and joins threads).
fn expired(entries: &mut HashMap<Key, Entry>) -> Vec<Arc<dyn Protocol>> {
    let mut gone = Vec::new();
    for entry in entries.values_mut() {
        if entry
            .kept
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= LINGER)
        {
            gone.extend(entry.kept.take().map(|(p, _)| p));
        }
    }
    entries.retain(|_, e| e.kept.is_some() || e.live.strong_count() > 0);
    gone
}

/// The protocol object for `servers` with `config`: the one a session
/// uses or recently used, or a new one made by `make`.
pub fn protocol(
    servers: Vec<Endpoint>,
    config: Config,
    make: impl FnOnce(Vec<Endpoint>, Config) -> Result<Arc<dyn Protocol>>,
) -> Result<Arc<dyn Protocol>> {
    let key = Key::new(&servers, &config);
    let registry = registry();
    let mut entries = registry.lock().unwrap_or_else(|e| e.into_inner());
    let gone = expired(&mut entries);
    let found = entries.get(&key).and_then(|e| e.live.upgrade());
    let shared = match found {
        Some(shared) => shared,
        None => {
            let made = make(servers, config)?;
            entries.insert(
                key,
                Entry {
                    live: Arc::downgrade(&made),
                    kept: None,
                },
            );
            made
        }
    };
    drop(entries);
    drop(gone);
    Ok(shared)
}

/// A session using `protocol` is closing. When it is the last one, the
/// object is kept for `LINGER` (its idle connections serve the next
/// session), without the parked watch streams of the sessions that used
/// it.
pub fn release(protocol: &Arc<dyn Protocol>) {
    let registry = registry();
    let mut entries = registry.lock().unwrap_or_else(|e| e.into_inner());
    let gone = expired(&mut entries);
    let entry = entries
        .values_mut()
        .find(|e| std::ptr::addr_eq(e.live.as_ptr(), Arc::as_ptr(protocol)));
    let mut last = false;
    if let Some(entry) = entry {
        // This session's handle, and the kept one if any: nobody else.
        let others = Arc::strong_count(protocol) - 1 - usize::from(entry.kept.is_some());
        if others == 0 {
            entry.kept = Some((Arc::clone(protocol), Instant::now()));
            last = true;
        }
    }
    drop(entries);
    drop(gone);
    if last {
        protocol.release_streams();
    }
}
