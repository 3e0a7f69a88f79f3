//! Shared by the integration tests: the etcd they run against, and keys
//! that do not collide between tests or runs.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use etcdapi::{Client, Config, Endpoint};

/// The endpoint of the etcd started by `c-tests/etcd-local run` (which
/// `make check` wraps around `cargo test`).
pub fn endpoint() -> String {
    std::env::var("ETCDAPI_TEST_ENDPOINT").expect(
        "ETCDAPI_TEST_ENDPOINT is not set: run the tests with `make check` \
         or `c-tests/etcd-local run -- cargo test`",
    )
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

/// A key prefix of its own for each caller in this run.
pub fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("/rt-{}-{t}-{n}/{name}", std::process::id())
}

/// A loopback port nothing listens on.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
