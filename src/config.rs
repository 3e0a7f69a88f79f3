//! Session settings, read from `ETCDAPI_*` environment variables when a
//! session opens.

use std::time::Duration;

/// Which of etcd's APIs a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolKind {
    /// The v3 API through etcd's HTTP/JSON gateway (default).
    V3,
    /// The legacy v2 keys API.
    V2,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Budget for opening a TCP connection to one server.
    pub connect_timeout: Duration,
    /// Budget for one request to one server (not applied to the blocking
    /// waits of watch and lock).
    pub request_timeout: Duration,
    pub protocol: ProtocolKind,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            connect_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(5000),
            protocol: ProtocolKind::V3,
        }
    }
}

impl Config {
    /// The defaults, overridden by `ETCDAPI_CONNECT_TIMEOUT_MS`,
    /// `ETCDAPI_REQUEST_TIMEOUT_MS` and `ETCDAPI_PROTOCOL`. A variable that
    /// is set but unusable is an error: a typo must not silently become a
    /// default.
    pub fn from_env() -> Result<Config, String> {
        let mut c = Config::default();
        if let Some(ms) = env_millis("ETCDAPI_CONNECT_TIMEOUT_MS")? {
            c.connect_timeout = ms;
        }
        if let Some(ms) = env_millis("ETCDAPI_REQUEST_TIMEOUT_MS")? {
            c.request_timeout = ms;
        }
        if let Some(p) = env_var("ETCDAPI_PROTOCOL")? {
            c.protocol = match p.to_ascii_lowercase().as_str() {
                "v3" | "" => ProtocolKind::V3,
                "v2" => ProtocolKind::V2,
                _ => return Err(format!("ETCDAPI_PROTOCOL={p:?}: expected v2 or v3")),
            };
        }
        Ok(c)
    }
}

fn env_var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid text")),
    }
}

fn env_millis(name: &str) -> Result<Option<Duration>, String> {
    let Some(v) = env_var(name)? else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(format!(
            "{name}={v:?}: expected a positive number of milliseconds"
        )),
    }
}
