//! Session settings, read from `ETCDAPI_*` environment variables when a
//! session opens (and, for TLS and authentication, from etcdctl's
//! `ETCDCTL_*` variables when ours are not set), then from the
//! configuration file ([`ConfigFile`]: `ETCDAPI_CONFIG`, else
//! `/etc/etcdapi.conf` if it exists), possibly overridden by the program
//! ([`SecureOptions`], `etcd_open_opts` in C).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Which of etcd's APIs a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
/// then our environment variable, then etcdctl's of the same name, then
/// the configuration file. Each carries the setting's name in lowercase
/// (`cacert`, `user` ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A field of the options the program passed (`etcd_options`).
    Option(&'static str),
    /// `ETCDAPI_<NAME>`.
    Ours(&'static str),
    /// etcdctl's `ETCDCTL_<NAME>`.
    Etcdctl(&'static str),
    /// `ETCDAPI_<NAME>` on `line` of the configuration file `path`.
    File {
        what: &'static str,
        path: Arc<str>,
        line: usize,
    },
}

impl Source {
    /// Lower is stronger.
    fn rank(&self) -> u8 {
        match self {
            Source::Option(_) => 0,
            Source::Ours(_) => 1,
            Source::Etcdctl(_) => 2,
            Source::File { .. } => 3,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Option(what) => write!(f, "option {what}"),
            Source::Ours(what) => write!(f, "ETCDAPI_{}", what.to_ascii_uppercase()),
            Source::Etcdctl(what) => write!(f, "ETCDCTL_{}", what.to_ascii_uppercase()),
            Source::File { what, path, line } => write!(
                f,
                "ETCDAPI_{} in configuration file {path}, line {line}",
                what.to_ascii_uppercase()
            ),
        }
    }
}

/// The settings a configuration file may hold: the environment's names.
pub const FILE_SETTINGS: &[&str] = &[
    "ETCDAPI_PROTOCOL",
    "ETCDAPI_CONNECT_TIMEOUT_MS",
    "ETCDAPI_REQUEST_TIMEOUT_MS",
    "ETCDAPI_CACERT",
    "ETCDAPI_CERT",
    "ETCDAPI_KEY",
    "ETCDAPI_USER",
    "ETCDAPI_PASSWORD",
];

/// The configuration file read when `ETCDAPI_CONFIG` is not set, if it
/// exists.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/etcdapi.conf";

/// A configuration file: one `NAME=value` a line, NAME one of
/// [`FILE_SETTINGS`]; blank lines and lines whose first non-blank
/// character is `#` are skipped. Blanks around NAME and around the value
/// are dropped; the value is the rest of the line, as it is (no quotes, no
/// escapes: a `#` in it is part of it). Anything else on a line (no `=`,
/// an unknown name, a name given twice) makes the whole file an error
/// naming the file and the line, so that a typo never silently becomes a
/// default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    path: Arc<str>,
    /// (name, value, line number from 1).
    settings: Vec<(&'static str, String, usize)>,
}

impl ConfigFile {
    /// Parses `text`, read from `path`.
    pub fn parse(path: &str, text: &str) -> Result<ConfigFile, String> {
        let path: Arc<str> = Arc::from(path);
        let mut settings: Vec<(&'static str, String, usize)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let at = |what: String| format!("configuration file {path}, line {n}: {what}");
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // Never the line itself in a message: it may hold a password.
            let Some((name, value)) = line.split_once('=') else {
                return Err(at("not NAME=value".into()));
            };
            let name = name.trim();
            let Some(known) = FILE_SETTINGS.iter().find(|s| **s == name) else {
                let shown: String = name.chars().take(64).collect();
                return Err(at(format!(
                    "unknown setting {shown:?} (known: {})",
                    FILE_SETTINGS.join(", ")
                )));
            };
            if let Some((_, _, first)) = settings.iter().find(|(s, _, _)| s == known) {
                return Err(at(format!("{known} is set again (first on line {first})")));
            }
            settings.push((known, value.trim().to_string(), n));
        }
        Ok(ConfigFile { path, settings })
    }

    /// The file `ETCDAPI_CONFIG` names (`var` looks it up), else
    /// `default` if it exists; None when there is none to read.
    /// `ETCDAPI_CONFIG` set empty means no file at all. A file that is
    /// named but cannot be read, or is malformed, is an error.
    pub fn find(
        var: &impl Fn(&str) -> Result<Option<String>, String>,
        default: &Path,
    ) -> Result<Option<ConfigFile>, String> {
        let (path, named) = match var("ETCDAPI_CONFIG")? {
            Some(p) if p.is_empty() => return Ok(None),
            Some(p) => (PathBuf::from(p), true),
            None if default.exists() => (default.to_path_buf(), false),
            None => return Ok(None),
        };
        let shown = path.display().to_string();
        let text = std::fs::read(&path).map_err(|e| {
            let why = if named { " (ETCDAPI_CONFIG)" } else { "" };
            format!("configuration file {shown}{why}: cannot read it: {e}")
        })?;
        let text = String::from_utf8(text)
            .map_err(|_| format!("configuration file {shown}: not valid UTF-8 text"))?;
        ConfigFile::parse(&shown, &text).map(Some)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of `name` and its line.
    pub fn get(&self, name: &str) -> Option<(String, usize)> {
        self.settings
            .iter()
            .find(|(s, _, _)| *s == name)
            .map(|(_, v, n)| (v.clone(), *n))
    }

    fn source(&self, what: &'static str, line: usize) -> Source {
        Source::File {
            what,
            path: self.path.clone(),
            line,
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
    ///
    /// Then the configuration file ([`ConfigFile::find`]): each setting the
    /// environment (ours or etcdctl's) does not give comes from it.
    pub fn from_env_with(options: &SecureOptions) -> Result<Config, String> {
        let file = ConfigFile::find(&env_var, Path::new(DEFAULT_CONFIG_FILE))?;
        Config::from_sources(options, env_var, file.as_ref())
    }

    /// [`Config::from_env_with`] with variables looked up by `var`, and no
    /// configuration file.
    pub fn from_vars(
        options: &SecureOptions,
        var: impl Fn(&str) -> Result<Option<String>, String>,
    ) -> Result<Config, String> {
        Config::from_sources(options, var, None)
    }

    /// [`Config::from_env_with`] with variables looked up by `var`, then
    /// `file`.
    pub fn from_sources(
        options: &SecureOptions,
        var: impl Fn(&str) -> Result<Option<String>, String>,
        file: Option<&ConfigFile>,
    ) -> Result<Config, String> {
        // A setting of ours that has no etcdctl twin: the environment,
        // else the file; with `NAME="value"` and where it came from, for
        // messages.
        let ours = |name: &str| -> Result<Option<(String, String)>, String> {
            if let Some(v) = var(name)? {
                let at = format!("{name}={v:?}");
                return Ok(Some((v, at)));
            }
            Ok(file.and_then(|f| {
                f.get(name).map(|(v, line)| {
                    let at = format!(
                        "{name}={v:?} (configuration file {}, line {line})",
                        f.path()
                    );
                    (v, at)
                })
            }))
        };
        let mut c = Config::default();
        if let Some(ms) = millis(&ours, "ETCDAPI_CONNECT_TIMEOUT_MS")? {
            c.connect_timeout = ms;
        }
        if let Some(ms) = millis(&ours, "ETCDAPI_REQUEST_TIMEOUT_MS")? {
            c.request_timeout = ms;
        }
        if let Some((p, at)) = ours("ETCDAPI_PROTOCOL")? {
            c.protocol = match p.to_ascii_lowercase().as_str() {
                "v3" | "" => ProtocolKind::V3,
                "v2" => ProtocolKind::V2,
                _ => return Err(format!("{at}: expected v2 or v3")),
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
            if let Some(f) = file {
                if let Some((v, line)) = f.get(&Source::Ours(what).to_string()) {
                    return Ok(Found::new(v, f.source(what, line)));
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
    ours: &impl Fn(&str) -> Result<Option<(String, String)>, String>,
    name: &str,
) -> Result<Option<Duration>, String> {
    let Some((v, at)) = ours(name)? else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(format!("{at}: expected a positive number of milliseconds")),
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

    fn with_file(
        options: &SecureOptions,
        vars: &[(&str, &str)],
        file: &str,
    ) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let file = ConfigFile::parse("/etc/etcdapi.conf", file)?;
        Config::from_sources(options, |name| Ok(vars.get(name).cloned()), Some(&file))
    }

    #[test]
    fn config_file_lines() {
        let f = ConfigFile::parse(
            "/f",
            "# for the NSS module\n\n  ETCDAPI_PROTOCOL = v2  \nETCDAPI_PASSWORD=a#b=c\n   # indented comment\n",
        )
        .unwrap();
        assert_eq!(f.get("ETCDAPI_PROTOCOL"), Some(("v2".to_string(), 3)));
        assert_eq!(f.get("ETCDAPI_PASSWORD"), Some(("a#b=c".to_string(), 4)));
        assert_eq!(f.get("ETCDAPI_USER"), None);
        let cases: &[(&str, &str)] = &[
            (
                "ETCDAPI_PROTOCOL=v2\nETCDAPI_PASSWORD hunter2\n",
                "configuration file /f, line 2: not NAME=value",
            ),
            (
                "\n# x\nETCDAPI_PROTOCL=v2\n",
                "configuration file /f, line 3: unknown setting \"ETCDAPI_PROTOCL\" (known: ETCDAPI_PROTOCOL, ETCDAPI_CONNECT_TIMEOUT_MS, ETCDAPI_REQUEST_TIMEOUT_MS, ETCDAPI_CACERT, ETCDAPI_CERT, ETCDAPI_KEY, ETCDAPI_USER, ETCDAPI_PASSWORD)",
            ),
            (
                "ETCDAPI_PROTOCOL=v2\nETCDAPI_PROTOCOL=v3\n",
                "configuration file /f, line 2: ETCDAPI_PROTOCOL is set again (first on line 1)",
            ),
            (
                "ETCDAPI_CONFIG=/other\n",
                "configuration file /f, line 1: unknown setting \"ETCDAPI_CONFIG\" (known: ETCDAPI_PROTOCOL, ETCDAPI_CONNECT_TIMEOUT_MS, ETCDAPI_REQUEST_TIMEOUT_MS, ETCDAPI_CACERT, ETCDAPI_CERT, ETCDAPI_KEY, ETCDAPI_USER, ETCDAPI_PASSWORD)",
            ),
            (
                "=v2\n",
                "configuration file /f, line 1: unknown setting \"\" (known: ETCDAPI_PROTOCOL, ETCDAPI_CONNECT_TIMEOUT_MS, ETCDAPI_REQUEST_TIMEOUT_MS, ETCDAPI_CACERT, ETCDAPI_CERT, ETCDAPI_KEY, ETCDAPI_USER, ETCDAPI_PASSWORD)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                ConfigFile::parse("/f", text).unwrap_err(),
                *want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn config_file_precedence() {
        let none = SecureOptions::default();
        // The file alone.
        let c = with_file(
            &none,
            &[],
            "ETCDAPI_PROTOCOL=v2\nETCDAPI_REQUEST_TIMEOUT_MS=700\n",
        )
        .unwrap();
        assert_eq!(c.protocol, ProtocolKind::V2);
        assert_eq!(c.request_timeout, Duration::from_millis(700));
        // The environment wins over the file.
        let c = with_file(
            &none,
            &[("ETCDAPI_PROTOCOL", "v3")],
            "ETCDAPI_PROTOCOL=v2\n",
        )
        .unwrap();
        assert_eq!(c.protocol, ProtocolKind::V3);
        // etcdctl's variables are the environment too.
        let c = with_file(
            &none,
            &[("ETCDCTL_CACERT", "/ctl/ca")],
            "ETCDAPI_CACERT=/file/ca\n",
        )
        .unwrap();
        assert_eq!(c.tls.cacert.unwrap().value, PathBuf::from("/ctl/ca"));
        let c = with_file(&none, &[], "\nETCDAPI_CACERT=/file/ca\n").unwrap();
        let ca = c.tls.cacert.unwrap();
        assert_eq!(ca.value, PathBuf::from("/file/ca"));
        assert_eq!(
            ca.source.to_string(),
            "ETCDAPI_CACERT in configuration file /etc/etcdapi.conf, line 2"
        );
        // An empty variable turns the file's value off.
        let c = with_file(
            &none,
            &[("ETCDAPI_CACERT", "")],
            "ETCDAPI_CACERT=/file/ca\n",
        )
        .unwrap();
        assert!(c.tls.cacert.is_none());
        // The program's options win over both.
        let opts = SecureOptions {
            cacert: Some("/opt/ca".into()),
            ..Default::default()
        };
        let c = with_file(
            &opts,
            &[("ETCDAPI_CACERT", "/env/ca")],
            "ETCDAPI_CACERT=/file/ca\n",
        )
        .unwrap();
        assert_eq!(c.tls.cacert.unwrap().value, PathBuf::from("/opt/ca"));
        // User and password from the file; a bad value names file and line.
        let c = with_file(&none, &[], "ETCDAPI_USER=root\nETCDAPI_PASSWORD=pw\n").unwrap();
        assert_eq!(creds(&c), Some(("root".into(), "pw".into())));
        assert_eq!(
            with_file(&none, &[], "# x\nETCDAPI_PROTOCOL=v4\n").unwrap_err(),
            "ETCDAPI_PROTOCOL=\"v4\" (configuration file /etc/etcdapi.conf, line 2): expected v2 or v3"
        );
        assert_eq!(
            with_file(&none, &[], "ETCDAPI_CONNECT_TIMEOUT_MS=soon\n").unwrap_err(),
            "ETCDAPI_CONNECT_TIMEOUT_MS=\"soon\" (configuration file /etc/etcdapi.conf, line 1): expected a positive number of milliseconds"
        );
        assert_eq!(
            config(&none, &[("ETCDAPI_PROTOCOL", "v4")]).unwrap_err(),
            "ETCDAPI_PROTOCOL=\"v4\": expected v2 or v3"
        );
    }

    #[test]
    fn config_file_is_found() {
        let dir = std::env::temp_dir().join(format!("etcdapi-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let default = dir.join("etcdapi.conf");
        let named = dir.join("named.conf");
        std::fs::write(&default, "ETCDAPI_PROTOCOL=v2\n").unwrap();
        std::fs::write(&named, "ETCDAPI_PROTOCOL=v3\n").unwrap();
        let vars = |list: &'static [(&'static str, &'static str)]| {
            move |name: &str| -> Result<Option<String>, String> {
                Ok(list
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string()))
            }
        };
        let found = |f: Option<ConfigFile>| {
            f.map(|f| (f.path().to_string(), f.get("ETCDAPI_PROTOCOL").unwrap().0))
        };
        // No ETCDAPI_CONFIG: the default file, if it exists.
        assert_eq!(
            found(ConfigFile::find(&vars(&[]), &default).unwrap()),
            Some((default.display().to_string(), "v2".into()))
        );
        assert_eq!(
            ConfigFile::find(&vars(&[]), &dir.join("none.conf")).unwrap(),
            None
        );
        // ETCDAPI_CONFIG names the file; empty: none at all.
        let name: &'static str = Box::leak(named.display().to_string().into_boxed_str());
        let with_named: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("ETCDAPI_CONFIG", name)].into_boxed_slice());
        assert_eq!(
            found(ConfigFile::find(&vars(with_named), &default).unwrap()),
            Some((name.to_string(), "v3".into()))
        );
        assert_eq!(
            ConfigFile::find(&vars(&[("ETCDAPI_CONFIG", "")]), &default).unwrap(),
            None
        );
        // A named file that cannot be read is an error.
        assert_eq!(
            ConfigFile::find(&vars(&[("ETCDAPI_CONFIG", "/nonexistent/etcdapi.conf")]), &default)
                .unwrap_err(),
            "configuration file /nonexistent/etcdapi.conf (ETCDAPI_CONFIG): cannot read it: No such file or directory (os error 2)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
