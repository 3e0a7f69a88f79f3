//! Session settings, read from `ETCDAPI_*` environment variables when a
//! session opens (and, for TLS and authentication, from etcdctl's
//! `ETCDCTL_*` variables when ours are not set), possibly overridden by
//! the program ([`SecureOptions`], `etcd_open_opts` in C).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Which of etcd's APIs a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolKind {
    /// The v3 API through etcd's HTTP/JSON gateway (default).
    V3,
    /// The legacy v2 keys API.
    V2,
}

#[derive(Clone)]
pub struct Config {
    /// Budget for opening a TCP connection to one server.
    pub connect_timeout: Duration,
    /// Budget for one request to one server (not applied to the blocking
    /// waits of watch and lock).
    pub request_timeout: Duration,
    pub protocol: ProtocolKind,
    /// Certificate files for `https` servers.
    pub tls: TlsFiles,
    /// User and password for etcd's authentication (v3 only).
    pub credentials: Option<Credentials>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            connect_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(5000),
            protocol: ProtocolKind::V3,
            tls: TlsFiles::default(),
            credentials: None,
        }
    }
}

// By hand, so that nothing derived ever prints a password.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("protocol", &self.protocol)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials)
            .finish()
    }
}

/// A setting's value and where it came from, for messages and for
/// choosing between two sources.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// Where a setting came from, strongest first: the program's option,
/// then our environment variable, then etcdctl's of the same name. Each
/// carries the setting's name in lowercase (`cacert`, `user` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A field of the options the program passed (`etcd_options`).
    Option(&'static str),
    /// `ETCDAPI_<NAME>`.
    Ours(&'static str),
    /// etcdctl's `ETCDCTL_<NAME>`.
    Etcdctl(&'static str),
}

impl Source {
    /// Lower is stronger.
    fn rank(self) -> u8 {
        match self {
            Source::Option(_) => 0,
            Source::Ours(_) => 1,
            Source::Etcdctl(_) => 2,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Option(what) => write!(f, "option {what}"),
            Source::Ours(what) => write!(f, "ETCDAPI_{}", what.to_ascii_uppercase()),
            Source::Etcdctl(what) => write!(f, "ETCDCTL_{}", what.to_ascii_uppercase()),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (from {})", self.value, self.source)
    }
}

/// PEM files for TLS: the CA that signs the servers' certificates (none:
/// the system's root certificates), and a client certificate with its key
/// for servers that ask for one.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub cacert: Option<Setting<PathBuf>>,
    pub cert: Option<Setting<PathBuf>>,
    pub key: Option<Setting<PathBuf>>,
}

impl TlsFiles {
    /// True when a CA or a client certificate is configured: servers
    /// written without a scheme are then reached over https.
    pub fn any(&self) -> bool {
        self.cacert.is_some() || self.cert.is_some()
    }
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("cacert", &self.cacert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

/// A user name and its password. The password is readable only through
/// [`Credentials::password`]; `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: String,
}

impl Credentials {
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS and authentication settings given by the program. A field left
/// `None` falls back to the environment (`ETCDAPI_*`, then `ETCDCTL_*`);
/// an empty string means "none", without looking at the environment.
#[derive(Clone, Default)]
pub struct SecureOptions {
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    /// `name`, or `name:password` when `password` is not given.
    pub user: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for SecureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureOptions")
            .field("cacert", &self.cacert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("user", &self.user.as_ref().map(|u| redact_user(u)))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `name:password` shown as `name:<redacted>`.
fn redact_user(user: &str) -> String {
    match user.split_once(':') {
        Some((name, _)) => format!("{name}:<redacted>"),
        None => user.to_string(),
    }
}

impl Config {
    /// The defaults, overridden by `ETCDAPI_CONNECT_TIMEOUT_MS`,
    /// `ETCDAPI_REQUEST_TIMEOUT_MS`, `ETCDAPI_PROTOCOL`, and the TLS and
    /// authentication variables (see [`Config::from_env_with`]). A variable
    /// that is set but unusable is an error: a typo must not silently
    /// become a default.
    pub fn from_env() -> Result<Config, String> {
        Config::from_env_with(&SecureOptions::default())
    }

    /// [`Config::from_env`], with the program's TLS and authentication
    /// options first: each of `cacert`, `cert`, `key`, `user`, `password`
    /// comes from `options`, else `ETCDAPI_CACERT`, `ETCDAPI_CERT`,
    /// `ETCDAPI_KEY`, `ETCDAPI_USER`, `ETCDAPI_PASSWORD`, else etcdctl's
    /// `ETCDCTL_CACERT`, `ETCDCTL_CERT`, `ETCDCTL_KEY`, `ETCDCTL_USER`,
    /// `ETCDCTL_PASSWORD`. An empty value means "none" and stops the search.
    pub fn from_env_with(options: &SecureOptions) -> Result<Config, String> {
        Config::from_vars(options, env_var)
    }

    /// [`Config::from_env_with`] with variables looked up by `var`.
    pub fn from_vars(
        options: &SecureOptions,
        var: impl Fn(&str) -> Result<Option<String>, String>,
    ) -> Result<Config, String> {
        let mut c = Config::default();
        if let Some(ms) = millis(&var, "ETCDAPI_CONNECT_TIMEOUT_MS")? {
            c.connect_timeout = ms;
        }
        if let Some(ms) = millis(&var, "ETCDAPI_REQUEST_TIMEOUT_MS")? {
            c.request_timeout = ms;
        }
        if let Some(p) = var("ETCDAPI_PROTOCOL")? {
            c.protocol = match p.to_ascii_lowercase().as_str() {
                "v3" | "" => ProtocolKind::V3,
                "v2" => ProtocolKind::V2,
                _ => return Err(format!("ETCDAPI_PROTOCOL={p:?}: expected v2 or v3")),
            };
        }
        let pick = |given: &Option<String>, what: &'static str| -> Result<Found, String> {
            if let Some(v) = given {
                return Ok(Found::new(v.clone(), Source::Option(what)));
            }
            for source in [Source::Ours(what), Source::Etcdctl(what)] {
                if let Some(v) = var(&source.to_string())? {
                    return Ok(Found::new(v, source));
                }
            }
            Ok(Found::Unset)
        };
        let path = |s: Setting<String>| Setting {
            value: PathBuf::from(s.value),
            source: s.source,
        };
        c.tls.cacert = pick(&options.cacert, "cacert")?.setting().map(path);
        // A certificate or a user turned off ("") takes its key or its
        // password with it.
        match (pick(&options.cert, "cert")?, pick(&options.key, "key")?) {
            (Found::Off, _) | (_, Found::Off) | (Found::Unset, Found::Unset) => {}
            (Found::Set(cert), Found::Set(key)) => {
                c.tls.cert = Some(path(cert));
                c.tls.key = Some(path(key));
            }
            (Found::Set(cert), Found::Unset) => {
                return Err(format!(
                    "a client certificate is given ({}) but no key for it (ETCDAPI_KEY)",
                    cert.source
                ))
            }
            (Found::Unset, Found::Set(key)) => {
                return Err(format!(
                    "a client key is given ({}) but no certificate for it (ETCDAPI_CERT)",
                    key.source
                ))
            }
        }
        c.credentials = match pick(&options.user, "user")? {
            Found::Off => None,
            user => credentials(
                user.setting(),
                pick(&options.password, "password")?.setting(),
            )?,
        };
        Ok(c)
    }
}

/// What the search for one setting found.
enum Found {
    /// Given nowhere.
    Unset,
    /// Given empty: explicitly none.
    Off,
    Set(Setting<String>),
}

impl Found {
    fn new(value: String, source: Source) -> Found {
        if value.is_empty() {
            Found::Off
        } else {
            Found::Set(Setting { value, source })
        }
    }

    fn setting(self) -> Option<Setting<String>> {
        match self {
            Found::Set(s) => Some(s),
            _ => None,
        }
    }
}

/// The user and password, etcdctl's way: a password given on its own goes
/// with the whole user name; otherwise the user is `name:password`.
fn credentials(
    user: Option<Setting<String>>,
    password: Option<Setting<String>>,
) -> Result<Option<Credentials>, String> {
    let Some(user) = user else {
        return match password {
            // etcdctl ignores a password without a user; so do we for its
            // variable, but not for ours.
            Some(p) if !matches!(p.source, Source::Etcdctl(_)) => Err(format!(
                "a password is given ({}) but no user (ETCDAPI_USER)",
                p.source
            )),
            _ => Ok(None),
        };
    };
    // A user written name:password keeps its own password over one from
    // a weaker source (ETCDAPI_USER=a:b beside etcdctl's ETCDCTL_PASSWORD).
    let password =
        password.filter(|p| !(user.value.contains(':') && p.source.rank() > user.source.rank()));
    let (name, password) = match password {
        Some(p) => (user.value, p.value),
        None => match user.value.split_once(':') {
            Some((name, password)) => (name.to_string(), password.to_string()),
            None => {
                return Err(format!(
                "user {:?} ({}) has no password: give it as name:password, or set ETCDAPI_PASSWORD",
                user.value, user.source
            ))
            }
        },
    };
    if name.is_empty() {
        return Err(format!("empty user name ({})", user.source));
    }
    Ok(Some(Credentials::new(name, password)))
}

fn env_var(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{name} is not valid text")),
    }
}

fn millis(
    var: &impl Fn(&str) -> Result<Option<String>, String>,
    name: &str,
) -> Result<Option<Duration>, String> {
    let Some(v) = var(name)? else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(format!(
            "{name}={v:?}: expected a positive number of milliseconds"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(options: &SecureOptions, vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(options, |name| Ok(vars.get(name).cloned()))
    }

    fn creds(c: &Config) -> Option<(String, String)> {
        c.credentials
            .as_ref()
            .map(|c| (c.user.clone(), c.password().to_string()))
    }

    #[test]
    fn precedence_option_then_ours_then_etcdctl() {
        let none = SecureOptions::default();
        let c = config(&none, &[("ETCDCTL_CACERT", "/ctl/ca")]).unwrap();
        assert_eq!(
            c.tls.cacert.as_ref().unwrap().value,
            PathBuf::from("/ctl/ca")
        );
        assert_eq!(
            c.tls.cacert.as_ref().unwrap().source,
            Source::Etcdctl("cacert")
        );
        let c = config(
            &none,
            &[("ETCDCTL_CACERT", "/ctl/ca"), ("ETCDAPI_CACERT", "/api/ca")],
        )
        .unwrap();
        assert_eq!(c.tls.cacert.unwrap().value, PathBuf::from("/api/ca"));
        let opts = SecureOptions {
            cacert: Some("/opt/ca".into()),
            ..Default::default()
        };
        let c = config(&opts, &[("ETCDAPI_CACERT", "/api/ca")]).unwrap();
        assert_eq!(c.tls.cacert.unwrap().value, PathBuf::from("/opt/ca"));
        // An empty value is "none" and stops the search.
        let opts = SecureOptions {
            cacert: Some(String::new()),
            ..Default::default()
        };
        assert!(config(&opts, &[("ETCDAPI_CACERT", "/api/ca")])
            .unwrap()
            .tls
            .cacert
            .is_none());
        assert!(config(
            &none,
            &[("ETCDAPI_CACERT", ""), ("ETCDCTL_CACERT", "/ctl/ca")]
        )
        .unwrap()
        .tls
        .cacert
        .is_none());
    }

    #[test]
    fn users_and_passwords() {
        let none = SecureOptions::default();
        type Vars = &'static [(&'static str, &'static str)];
        let cases: &[(Vars, (&str, &str))] = &[
            (
                &[("ETCDCTL_USER", "bob:pw:with:colons")],
                ("bob", "pw:with:colons"),
            ),
            (
                &[("ETCDAPI_USER", "a:b"), ("ETCDAPI_PASSWORD", "secret")],
                ("a:b", "secret"),
            ),
            (
                &[("ETCDAPI_USER", "alice"), ("ETCDCTL_PASSWORD", "pw")],
                ("alice", "pw"),
            ),
            // name:password keeps its password over a weaker source's.
            (
                &[("ETCDAPI_USER", "alice:mine"), ("ETCDCTL_PASSWORD", "pw")],
                ("alice", "mine"),
            ),
        ];
        for (vars, (user, password)) in cases {
            let c = config(&none, vars).unwrap();
            assert_eq!(
                creds(&c),
                Some((user.to_string(), password.to_string())),
                "{vars:?}"
            );
        }
        let opts = SecureOptions {
            user: Some("bob:opt".into()),
            ..Default::default()
        };
        let c = config(&opts, &[("ETCDAPI_PASSWORD", "env")]).unwrap();
        assert_eq!(creds(&c), Some(("bob".into(), "opt".into())));
        let opts = SecureOptions {
            user: Some("carol".into()),
            password: Some("opw".into()),
            ..Default::default()
        };
        let c = config(&opts, &[("ETCDAPI_USER", "x:y")]).unwrap();
        assert_eq!(creds(&c), Some(("carol".into(), "opw".into())));
        assert!(config(&none, &[("ETCDCTL_PASSWORD", "pw")])
            .unwrap()
            .credentials
            .is_none());
        let e = config(&none, &[("ETCDAPI_USER", "alice")]).unwrap_err();
        assert!(
            e.contains("no password") && e.contains("ETCDAPI_USER"),
            "{e}"
        );
        let e = config(&none, &[("ETCDAPI_PASSWORD", "hunter2")]).unwrap_err();
        assert!(e.contains("no user") && !e.contains("hunter2"), "{e}");
        let e = config(&none, &[("ETCDAPI_USER", ":hunter2")]).unwrap_err();
        assert!(e.contains("empty user") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn cert_and_key_go_together() {
        let none = SecureOptions::default();
        let e = config(&none, &[("ETCDAPI_CERT", "/c")]).unwrap_err();
        assert!(e.contains("ETCDAPI_CERT") && e.contains("no key"), "{e}");
        let e = config(&none, &[("ETCDCTL_KEY", "/k")]).unwrap_err();
        assert!(
            e.contains("ETCDCTL_KEY") && e.contains("no certificate"),
            "{e}"
        );
        let c = config(&none, &[("ETCDAPI_CERT", "/c"), ("ETCDAPI_KEY", "/k")]).unwrap();
        assert!(c.tls.any());
        assert!(!config(&none, &[]).unwrap().tls.any());
        // A certificate turned off takes its key with it; a user turned
        // off, the password.
        let off = SecureOptions {
            cert: Some(String::new()),
            user: Some(String::new()),
            ..Default::default()
        };
        let c = config(
            &off,
            &[
                ("ETCDAPI_CERT", "/c"),
                ("ETCDAPI_KEY", "/k"),
                ("ETCDAPI_USER", "u"),
                ("ETCDAPI_PASSWORD", "p"),
            ],
        )
        .unwrap();
        assert!(c.tls.cert.is_none() && c.tls.key.is_none() && c.credentials.is_none());
    }

    #[test]
    fn debug_never_shows_a_password() {
        let opts = SecureOptions {
            user: Some("dave:hunter2".into()),
            password: None,
            ..Default::default()
        };
        let c = config(&opts, &[]).unwrap();
        for text in [format!("{c:?}"), format!("{opts:?}"), format!("{c:#?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("dave"), "{text}");
        }
        let opts = SecureOptions {
            user: Some("dave".into()),
            password: Some("hunter2".into()),
            ..Default::default()
        };
        assert!(!format!("{opts:?}").contains("hunter2"));
    }
}
