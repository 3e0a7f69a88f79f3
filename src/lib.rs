//! libetcdapi: etcd for C programs written against the old `etcd-api`
//! library, with a Rust core that speaks etcd v3 (through etcd's HTTP/JSON
//! gateway) or the legacy v2 keys API.
//!
//! Rust programs can use [`Client`] directly; the `extern "C"` layer
//! (`src/ffi`) is a thin wrapper over it.
//!
//! # Layout
//!
//! The arrows point one way: `ffi` → [`Client`] → one `Protocol` (v3 or
//! v2) → `transport` → ureq.
//!
//! | where | what |
//! |---|---|
//! | `ffi/` | the C API: pointers in, malloc'd strings out, the panic boundary (`extended`, `election`: SPEC section 7) |
//! | `client.rs` | [`Client`]: canonical keys and the argument policy (ttl, the root key, the texts for a missing key) |
//! | `protocol.rs` | the one trait both protocols implement, and `Extended` (v3 only: revisions, prefixes, conditional writes, leases) |
//! | `v3/` | etcd v3: `gateway` (calls, login) and `status` (answers, typed refusals) under `kv`, `lease`, `lock`, `watch` (kept streams; a cut stream reconnects here), `maintenance` (the leader), `election` (campaigns, leaders, observers) |
//! | `v2/` | etcd v2: `wire` (refusals, key paths, forms) under `kv`, `lock`, `watch` (long polls), `maintenance` |
//! | `outcome.rs` | settling a write whose answer was lost (v3's fenced writes in `v3/settle.rs`) |
//! | `transport/` | HTTP to the member list: one failover loop, stalled requests moved on, silent waits checked; `socket.rs`: the TCP socket under it |
//! | `shared.rs`, `process.rs` | one protocol object per process and settings, shared by sessions; what a child makes anew after `fork()` |
//! | `config.rs`, `tls.rs` | settings from the environment and options; certificates |
//! | `kv.rs` | the extended API's types ([`KeyValue`], [`WatchEvent`], ...) |
//! | `txn.rs` | transactions' types ([`Compare`], [`Op`], [`TxnOutcome`]) |
//! | `servers.rs`, `keys.rs`, `error.rs` | server lists, key paths, errors |

pub mod client;
pub mod config;
pub mod error;
mod ffi;
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
pub mod kv;
mod outcome;
mod process;
mod protocol;
pub mod servers;
mod shared;
mod tls;
mod transport;
pub mod txn;
mod v2;
mod v3;

pub use client::Client;
pub use config::{Config, Credentials, ProtocolKind, SecureOptions, Setting, Source, TlsFiles};
pub use error::{Error, ErrorKind, Result};
pub use kv::{Changes, Deleted, KeyValue, Leadership, LeaseTime, Listing, WatchEvent};
pub use protocol::Event;
pub use servers::{parse_server_list, Endpoint};
pub use txn::{Compare, CompareOp, Op, OpResult, Target, TxnOutcome};
