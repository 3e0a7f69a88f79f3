//! libetcdapi: etcd for C programs written against the old `etcd-api`
//! library, with a Rust core that speaks etcd v3 (through etcd's HTTP/JSON
//! gateway) or the legacy v2 keys API.
//!
//! Rust programs can use [`Client`] directly; the `extern "C"` layer in
//! [`ffi`] is a thin wrapper over it.

pub mod client;
pub mod config;
pub mod error;
pub mod ffi;
pub mod keys;
mod outcome;
pub mod protocol;
pub mod servers;
pub mod tls;
pub mod transport;
pub mod v2;
pub mod v3;

pub use client::Client;
pub use config::{Config, Credentials, ProtocolKind, SecureOptions, Source, TlsFiles};
pub use error::{Error, ErrorKind, Result};
pub use protocol::Event;
pub use servers::{parse_server_list, Endpoint};
