//! Secure etcd servers for the TLS and authentication tests: certificates
//! made at test time with openssl, and single-node etcds on free loopback
//! ports with https client URLs, client-certificate authentication and
//! users, as a test asks. Each server lives in a temp dir of its own and
//! is killed (and its dir removed) on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use etcdapi::{Client, Config, Credentials, Endpoint, TlsFiles};

/// Passwords of the users every auth server has.
pub const ROOT_PASSWORD: &str = "r00t-S3cret!";
pub const ALICE_PASSWORD: &str = "al1ce-S3cret:with:colons";
// One literal for STAFF_PASSWORD and ADD_STAFF's `staff:PASSWORD`.
macro_rules! staff_password {
    () => {
        "st4ff-S3cret"
    };
}
/// The password of `staff`, a user that is not root but may read and
/// write every key (role `everything`).
pub const STAFF_PASSWORD: &str = staff_password!();

/// The etcdctl commands (as root, before authentication is on) that add
/// the user `staff` and its role `everything`: read-write from the empty
/// key on, which is every key.
pub const ADD_STAFF: &[&[&str]] = &[
    &["role", "add", "everything"],
    &[
        "role",
        "grant-permission",
        "everything",
        "readwrite",
        "--from-key",
        "",
    ],
    &["user", "add", concat!("staff:", staff_password!())],
    &["user", "grant-role", "staff", "everything"],
];

/// The certificates, made once per test process.
pub struct Certs {
    pub dir: PathBuf,
}

impl Certs {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// The CA that signs the server and client certificates.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }
    /// A CA that signs nothing the servers use.
    pub fn other_ca(&self) -> PathBuf {
        self.path("other-ca.crt")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes (once) a CA; a server certificate for 127.0.0.1 and localhost;
/// client certificates without a Common Name (what the gateway takes with
/// auth on) and with one (CN=root); a second CA with a client certificate
/// of its own; and broken files: a key of another certificate, an
/// encrypted key, garbage.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Leftovers of earlier runs (whose process is gone).
        if let Ok(entries) = fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(pid) = name.strip_prefix("secure-certs-") {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = base.join(format!("secure-certs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let d = dir.as_path();
        fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        fs::write(d.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (ca, cn) in [("ca", "etcdapi-test-ca"), ("other-ca", "etcdapi-other-ca")] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.crt"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
        }
        // name, subject, ext file, signing CA
        for (name, subj, ext, ca) in [
            ("server", "/CN=127.0.0.1", "server.ext", "ca"),
            ("client", "/O=etcdapi-test-client", "client.ext", "ca"),
            ("client-cn", "/CN=root", "client.ext", "ca"),
            (
                "other-client",
                "/O=etcdapi-other-client",
                "client.ext",
                "other-ca",
            ),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    subj,
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-out",
                    &format!("{name}.crt"),
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                ],
            );
        }
        openssl(
            d,
            &[
                "pkey",
                "-in",
                "client.key",
                "-aes256",
                "-passout",
                "pass:secret",
                "-out",
                "client-encrypted.key",
            ],
        );
        fs::write(d.join("garbage.pem"), "this is not a certificate\n").unwrap();
        Certs { dir }
    })
}

/// How a test server is set up.
#[derive(Clone, Copy, Default)]
pub struct Setup {
    /// https client URLs (server certificate signed by `ca.crt`).
    pub tls: bool,
    /// `--client-cert-auth`: clients must show a certificate signed by
    /// `ca.crt`.
    pub client_cert_auth: bool,
    /// Users `root`, `alice` (role `app`: read-write on `/app/` only)
    /// and `staff` (role `everything`: read-write on every key), then
    /// authentication enabled.
    pub auth: bool,
    /// `--auth-token-ttl` in seconds.
    pub token_ttl: Option<u32>,
}

pub struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
    peer_port: u16,
    pub setup: Setup,
}

impl Etcd {
    /// Starts a server and waits until it serves (and its users exist).
    pub fn start(setup: Setup) -> Etcd {
        let mut last = String::new();
        for _ in 0..3 {
            match Etcd::try_start(setup) {
                Ok(e) => return e,
                Err(why) => {
                    eprintln!("secure etcd start failed: {why}");
                    last = why;
                }
            }
        }
        panic!("could not start a secure etcd: {last}");
    }

    fn try_start(setup: Setup) -> Result<Etcd, String> {
        let dir = std::env::temp_dir().join(format!("etcdapi-secure-{}", super::unique_tag()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let ports = super::free_ports(2);
        let mut etcd = Etcd {
            child: None,
            dir,
            port: ports[0],
            peer_port: ports[1],
            setup,
        };
        etcd.spawn()?;
        etcd.wait_ready()?;
        if setup.auth {
            etcd.add_users()?;
        }
        Ok(etcd)
    }

    /// Stops the server (SIGKILL) and starts it again on the same data
    /// dir and ports: its users stay, the tokens it handed out do not
    /// (simple tokens live in the member's memory).
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn().unwrap();
        let root = self
            .setup
            .auth
            .then(|| Credentials::new("root", ROOT_PASSWORD));
        self.wait_ready_as(root).unwrap();
    }

    /// Launches etcd with the same command line every time.
    fn spawn(&mut self) -> Result<(), String> {
        let certs = certs();
        let setup = self.setup;
        let dir = &self.dir;
        let scheme = if setup.tls { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{}", self.port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("etcd.log"))
            .unwrap();
        let mut cmd = Command::new(super::etcd_bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["--name", "secure", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("secure={peer_url}")])
            .arg("--enable-v2=true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if setup.tls {
            cmd.arg("--cert-file")
                .arg(certs.path("server.crt"))
                .arg("--key-file")
                .arg(certs.path("server.key"));
        }
        if setup.client_cert_auth {
            cmd.arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(certs.ca());
        }
        if let Some(ttl) = setup.token_ttl {
            cmd.arg(format!("--auth-token-ttl={ttl}"));
        }
        self.child = Some(cmd.spawn().map_err(|e| format!("spawn etcd: {e}"))?);
        Ok(())
    }

    /// `scheme://127.0.0.1:port`.
    pub fn url(&self) -> String {
        let scheme = if self.setup.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        etcdapi::parse_server_list(&self.url()).unwrap()
    }

    /// The TLS files a well-configured client uses with this server.
    pub fn tls_files(&self) -> TlsFiles {
        let c = certs();
        let mut t = TlsFiles::default();
        if self.setup.tls {
            t.cacert = Some(setting(c.ca()));
        }
        if self.setup.client_cert_auth {
            t.cert = Some(setting(c.path("client.crt")));
            t.key = Some(setting(c.path("client.key")));
        }
        t
    }

    /// A config with this server's TLS files and `credentials`, and short
    /// time-outs.
    pub fn config(&self, credentials: Option<Credentials>) -> Config {
        Config {
            tls: self.tls_files(),
            credentials,
            connect_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_millis(3000),
            ..Config::default()
        }
    }

    pub fn client(&self, credentials: Option<Credentials>) -> Client {
        Client::new(self.endpoints(), self.config(credentials)).unwrap()
    }

    pub fn root(&self) -> Client {
        self.client(Some(Credentials::new("root", ROOT_PASSWORD)))
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        self.wait_ready_as(None)
    }

    fn wait_ready_as(&mut self, credentials: Option<Credentials>) -> Result<(), String> {
        let client = self.client(credentials);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !self.alive() {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(format!("etcd exited: {}", tail.join(" | ")));
            }
            if client.leader().is_ok() && client.get("/").is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("etcd not ready after 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// etcdctl on this server, as root once authentication is on.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let c = certs();
        let mut cmd = Command::new(super::etcdctl_bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url()))
            .arg("--command-timeout=5s");
        if self.setup.tls {
            cmd.arg(format!("--cacert={}", c.ca().display()));
        }
        if self.setup.client_cert_auth {
            cmd.arg(format!("--cert={}", c.path("client.crt").display()))
                .arg(format!("--key={}", c.path("client.key").display()));
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("etcdctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "etcdctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn add_users(&self) -> Result<(), String> {
        // etcdctl splits name:password at the first colon.
        self.etcdctl(&["user", "add", &format!("root:{ROOT_PASSWORD}")])?;
        self.etcdctl(&["role", "add", "app"])?;
        self.etcdctl(&[
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "/app/",
            "--prefix=true",
        ])?;
        self.etcdctl(&["user", "add", &format!("alice:{ALICE_PASSWORD}")])?;
        self.etcdctl(&["user", "grant-role", "alice", "app"])?;
        for args in ADD_STAFF {
            self.etcdctl(args)?;
        }
        // etcd 3.5 enables authentication only once root holds the role
        // root (3.4's etcdctl granted it by itself).
        self.etcdctl(&["user", "grant-role", "root", "root"])?;
        self.etcdctl(&["auth", "enable"])?;
        Ok(())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "test failed: etcd log kept in {}/etcd.log",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A file setting as if given by the program.
pub fn setting(path: PathBuf) -> etcdapi::Setting<PathBuf> {
    etcdapi::Setting {
        value: path,
        source: etcdapi::Source::Option("test"),
    }
}
