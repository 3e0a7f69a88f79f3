//! A throw-away etcd cluster of n members on loopback, for failure tests:
//! kill a member (SIGKILL), restart it on the same data dir, freeze it
//! (SIGSTOP), find the leader.
//!
//! Clusters are started one at a time in a test process (a global lock is
//! held for each cluster's life): a 2-core machine running several
//! three-member clusters at once makes elections flap and timings
//! meaningless.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One cluster at a time per test process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Budget for a fresh cluster to become healthy.
const START_BUDGET: Duration = Duration::from_secs(20);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    /// `None` while killed.
    child: Option<Child>,
    /// Decimal raft member ID (learned once the cluster is up).
    id: u64,
    paused: bool,
}

pub struct Cluster {
    root: PathBuf,
    token: String,
    initial_cluster: String,
    members: Mutex<Vec<Member>>,
    http: ureq::Agent,
    /// Keep the data dirs (and logs) when dropped.
    keep: bool,
    /// Held for the cluster's life; released after the members are gone.
    turn: Option<MutexGuard<'static, ()>>,
}

impl Cluster {
    /// Starts an n-member cluster and waits until every member is healthy.
    /// A start that fails (a port taken between choosing it and etcd
    /// binding it) is tried again with new ports.
    pub fn start(n: usize) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let mut turn = Some(turn);
        let mut last = String::new();
        for attempt in 0..3 {
            match Cluster::try_start(n, turn.take().unwrap()) {
                Ok(c) => return c,
                Err((why, t)) => {
                    eprintln!("cluster start attempt {attempt} failed: {why}");
                    last = why;
                    turn = Some(t);
                }
            }
        }
        panic!("could not start a {n}-member etcd cluster: {last}");
    }

    fn try_start(
        n: usize,
        turn: MutexGuard<'static, ()>,
    ) -> Result<Cluster, (String, MutexGuard<'static, ()>)> {
        let tag = super::unique_tag();
        let root = std::env::temp_dir().join(format!("etcdapi-cluster-{tag}"));
        fs::create_dir_all(&root).unwrap();
        let ports = super::free_ports(2 * n);
        let members: Vec<Member> = (0..n)
            .map(|i| {
                let data_dir = root.join(format!("m{i}"));
                fs::create_dir_all(&data_dir).unwrap();
                Member {
                    name: format!("m{i}"),
                    client_port: ports[2 * i],
                    peer_port: ports[2 * i + 1],
                    data_dir,
                    child: None,
                    id: 0,
                    paused: false,
                }
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_millis(300)))
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let cluster = Cluster {
            root,
            token: format!("etcdapi-test-{tag}"),
            initial_cluster,
            members: Mutex::new(members),
            http,
            keep: false,
            turn: Some(turn),
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        if let Err(why) = cluster.wait_healthy_inner(START_BUDGET) {
            return Err(cluster.fail_start(why));
        }
        // Learn each member's ID (for leader_index).
        for i in 0..n {
            match cluster.status(i).and_then(|s| member_id(&s)) {
                Some(id) => cluster.members()[i].id = id,
                None => return Err(cluster.fail_start(format!("m{i}: no member_id in status"))),
            }
        }
        Ok(cluster)
    }

    /// Stops a cluster that did not come up, keeping its logs for a look,
    /// and hands back the turn.
    fn fail_start(mut self, why: String) -> (String, MutexGuard<'static, ()>) {
        self.keep = true;
        let logs = self.root.display().to_string();
        let turn = self.turn.take().unwrap();
        drop(self);
        (format!("{why} (logs kept in {logs})"), turn)
    }

    fn members(&self) -> MutexGuard<'_, Vec<Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Launches member `i` with the same command line every time. On a
    /// restart the data dir already holds the member's WAL, and etcd (3.4
    /// and 3.5) ignores `--initial-cluster*` then (its log says "the server is
    /// already initialized as member before, starting as etcd member..."
    /// and "restarting member <id> in cluster <id> at commit index <n>"),
    /// so `--initial-cluster-state existing` is not needed.
    fn spawn(&self, i: usize) {
        let mut members = self.members();
        let m = &mut members[i];
        assert!(m.child.is_none(), "m{i} is already running");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(m.data_dir.join("etcd.log"))
            .unwrap();
        let client_url = format!("http://127.0.0.1:{}", m.client_port);
        let peer_url = format!("http://127.0.0.1:{}", m.peer_port);
        let mut cmd = Command::new(super::etcd_bin());
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(m.data_dir.join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            .arg("--enable-v2=true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // etcd reads every ETCD_* variable as a flag (make check exports
        // ETCD_SERVERS for the C tool).
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(k);
            }
        }
        m.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", super::etcd_bin().display())),
        );
        m.paused = false;
    }

    /// Every member's client address, `host:port,host:port,...`.
    pub fn endpoints(&self) -> String {
        (0..self.len())
            .map(|i| self.member_endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Member `i`'s client address, `host:port`.
    pub fn member_endpoint(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.members()[i].client_port)
    }

    /// The addresses of members `order`, in that order (a session's
    /// server list with a chosen member first).
    pub fn endpoints_in_order(&self, order: &[usize]) -> String {
        order
            .iter()
            .map(|&i| self.member_endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `order` with `first` moved to the front.
    pub fn order_with_first(&self, first: usize) -> Vec<usize> {
        std::iter::once(first)
            .chain((0..self.len()).filter(|&i| i != first))
            .collect()
    }

    /// Kills member `i` with SIGKILL and waits until it has exited.
    pub fn kill(&self, i: usize) {
        let mut members = self.members();
        let m = &mut members[i];
        let mut child = m
            .child
            .take()
            .unwrap_or_else(|| panic!("m{i} is not running"));
        child.kill().unwrap();
        child.wait().unwrap();
        m.paused = false;
    }

    /// Starts member `i` again: same command, same data dir.
    pub fn restart(&self, i: usize) {
        self.spawn(i);
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.members()[i].child.is_some()
    }

    /// Freezes member `i` (SIGSTOP): its ports still accept connections
    /// (the kernel completes the handshake) but nothing answers.
    pub fn pause(&self, i: usize) {
        self.signal(i, libc::SIGSTOP, true);
    }

    pub fn resume(&self, i: usize) {
        self.signal(i, libc::SIGCONT, false);
    }

    /// Sends `signal` to running member `i`, which is frozen after it
    /// if `paused`.
    fn signal(&self, i: usize, signal: libc::c_int, paused: bool) {
        let mut members = self.members();
        let m = &mut members[i];
        let pid = m.child.as_ref().expect("running").id() as i32;
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        m.paused = paused;
    }

    /// Member `i`'s etcd log.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.members()[i].data_dir.join("etcd.log")
    }

    /// `POST /v3/maintenance/status {}` on member `i`, if it answers 200.
    pub fn status(&self, i: usize) -> Option<Value> {
        let url = format!("http://{}/v3/maintenance/status", self.member_endpoint(i));
        self.post_json(&url, "{}")
    }

    fn post_json(&self, url: &str, body: &str) -> Option<Value> {
        let resp = self.http.post(url).send(body.as_bytes()).ok()?;
        if resp.status() != 200 {
            return None;
        }
        let text = resp.into_body().read_to_string().ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The member that is leader now: a running, unfrozen member whose
    /// status names itself as leader (the highest raft term wins if two
    /// claim it during an election). `None` while there is none.
    pub fn leader_index(&self) -> Option<usize> {
        let live: Vec<usize> = {
            let members = self.members();
            (0..members.len())
                .filter(|&i| members[i].child.is_some() && !members[i].paused)
                .collect()
        };
        let mut best: Option<(u64, usize)> = None;
        for i in live {
            let Some(s) = self.status(i) else { continue };
            let (Some(me), Some(leader)) = (member_id(&s), uint_field(&s["leader"])) else {
                continue;
            };
            if me == leader && leader != 0 {
                let term = uint_field(&s["raftTerm"]).unwrap_or(0);
                if best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// Waits until there is a leader (see `leader_index`).
    pub fn wait_leader(&self, timeout: Duration) -> usize {
        super::wait_for(timeout, "no leader", || self.leader_index())
    }

    /// A member that is running and is not the leader.
    pub fn follower_index(&self) -> usize {
        let leader = self.wait_leader(Duration::from_secs(10));
        let members = self.members();
        (0..members.len())
            .find(|&i| i != leader && members[i].child.is_some() && !members[i].paused)
            .expect("a running follower")
    }

    /// Waits until every running member's `/health` says true.
    pub fn wait_healthy(&self, timeout: Duration) {
        if let Err(why) = self.wait_healthy_inner(timeout) {
            panic!("cluster not healthy within {timeout:?}: {why}");
        }
    }

    fn wait_healthy_inner(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut bad = Vec::new();
            let n = self.len();
            for i in 0..n {
                {
                    let mut members = self.members();
                    let m = &mut members[i];
                    let Some(child) = m.child.as_mut() else {
                        continue;
                    };
                    if let Ok(Some(status)) = child.try_wait() {
                        m.child = None;
                        return Err(format!("m{i} exited: {status}"));
                    }
                }
                let url = format!("http://{}/health", self.member_endpoint(i));
                let healthy = self
                    .http
                    .get(&url)
                    .call()
                    .ok()
                    .and_then(|r| r.into_body().read_to_string().ok())
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .is_some_and(|v| v["health"] == "true");
                if !healthy {
                    bad.push(format!("m{i}"));
                }
            }
            if bad.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not healthy: {}", bad.join(" ")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Member `i`'s raft ID, as `etcd_leader` names it (lowercase hex).
    pub fn member_hex_id(&self, i: usize) -> String {
        format!("{:x}", self.members()[i].id)
    }

    /// Adds the users `root` and `staff` (role `everything`: read-write
    /// on every key; passwords as in `secure`), then turns authentication
    /// on. `leader_index` and `status` ask without a token: on etcds
    /// whose status is for admins only they find nothing after this.
    pub fn enable_auth(&self) {
        use super::secure::{ADD_STAFF, ROOT_PASSWORD};
        let root = format!("root:{ROOT_PASSWORD}");
        let add_root: &[&[&str]] = &[
            &["user", "add", &root],
            &["user", "grant-role", "root", "root"],
        ];
        let enable: &[&[&str]] = &[&["auth", "enable"]];
        for args in add_root.iter().chain(ADD_STAFF).chain(enable) {
            let out = Command::new(super::etcdctl_bin())
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", self.endpoints()))
                .args(*args)
                .stdin(Stdio::null())
                .output()
                .expect("run etcdctl");
            assert!(
                out.status.success(),
                "etcdctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The data dir holding every member's dir (and logs).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut members = self.members();
        for m in members.iter_mut() {
            if let Some(mut c) = m.child.take() {
                if m.paused {
                    unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        drop(members);
        if self.keep {
            // fail_start says where.
        } else if std::thread::panicking() {
            eprintln!(
                "test failed: etcd logs kept in {}/m*/etcd.log",
                self.root.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

fn uint_field(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn member_id(status: &Value) -> Option<u64> {
    uint_field(&status["header"]["member_id"])
}

/// The whole history of `key` from revision `from`, as (revision, value)
/// pairs (`None` for a delete), read with a raw gateway watch until the
/// change at revision `until` (or later) has been seen.
pub fn key_history(
    endpoint: &str,
    key: &[u8],
    from: i64,
    until: i64,
) -> Vec<(i64, Option<Vec<u8>>)> {
    use base64::Engine;
    use std::io::BufRead;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let body = format!(
        r#"{{"create_request":{{"key":"{}","start_revision":"{from}"}}}}"#,
        b64(key)
    );
    let resp = agent
        .post(&format!("http://{endpoint}/v3/watch"))
        .send(body.as_bytes())
        .expect("history watch");
    let mut reader = std::io::BufReader::new(resp.into_body().into_reader());
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("history watch stream");
        assert!(n > 0, "history watch ended before revision {until}");
        let v: Value = serde_json::from_str(&line).expect("history watch message");
        let r = &v["result"];
        assert!(r["canceled"] != true, "history watch canceled: {line}");
        for ev in r["events"].as_array().into_iter().flatten() {
            let rev = uint_field(&ev["kv"]["mod_revision"]).unwrap() as i64;
            let value = if ev["type"] == "DELETE" {
                None
            } else {
                let v = ev["kv"]["value"].as_str().unwrap_or("");
                Some(base64::engine::general_purpose::STANDARD.decode(v).unwrap())
            };
            out.push((rev, value));
            if rev >= until {
                return out;
            }
        }
    }
}

/// The revision of the store as member `endpoint` sees it.
pub fn revision(endpoint: &str) -> i64 {
    let resp = ureq::post(&format!("http://{endpoint}/v3/kv/range"))
        .send(&b"{\"key\":\"AA==\"}"[..])
        .expect("range");
    let v: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
    uint_field(&v["header"]["revision"]).unwrap() as i64
}

/// The value and mod revision of `key` as member `endpoint` sees it (a raw
/// linearizable range, independent of the library).
pub fn raw_get(endpoint: &str, key: &[u8]) -> Option<(Vec<u8>, i64)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = format!(r#"{{"key":"{}"}}"#, b64.encode(key));
    let resp = ureq::post(&format!("http://{endpoint}/v3/kv/range"))
        .send(body.as_bytes())
        .expect("range");
    let v: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
    let kv = v["kvs"].as_array()?.first()?.clone();
    let value = b64.decode(kv["value"].as_str().unwrap_or("")).unwrap();
    Some((value, uint_field(&kv["mod_revision"]).unwrap() as i64))
}

/// Every change to a key strictly below `prefix/` from revision `from`,
/// in etcd's order, read with a raw gateway watch until the change at
/// revision `until` (or later) has been seen.
pub fn prefix_history(
    endpoint: &str,
    prefix: &[u8],
    from: i64,
    until: i64,
) -> Vec<super::linearizable::Change> {
    use base64::Engine;
    use std::io::BufRead;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut start = prefix.to_vec();
    start.push(b'/');
    let mut end = prefix.to_vec();
    end.push(b'/' + 1);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let body = format!(
        r#"{{"create_request":{{"key":"{}","range_end":"{}","start_revision":"{from}"}}}}"#,
        b64.encode(&start),
        b64.encode(&end)
    );
    let resp = agent
        .post(&format!("http://{endpoint}/v3/watch"))
        .send(body.as_bytes())
        .expect("history watch");
    let mut reader = std::io::BufReader::new(resp.into_body().into_reader());
    let mut out = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("history watch stream");
        assert!(n > 0, "history watch ended before revision {until}");
        let v: Value = serde_json::from_str(&line).expect("history watch message");
        let r = &v["result"];
        assert!(r["canceled"] != true, "history watch canceled: {line}");
        for ev in r["events"].as_array().into_iter().flatten() {
            let revision = uint_field(&ev["kv"]["mod_revision"]).unwrap() as i64;
            let key = b64.decode(ev["kv"]["key"].as_str().unwrap_or("")).unwrap();
            let value = if ev["type"] == "DELETE" {
                None
            } else {
                Some(
                    b64.decode(ev["kv"]["value"].as_str().unwrap_or(""))
                        .unwrap(),
                )
            };
            out.push(super::linearizable::Change {
                revision,
                key,
                value,
            });
        }
        if out.last().is_some_and(|c| c.revision >= until) {
            return out;
        }
    }
}
