//! TLS, client certificates and etcd authentication, against etcd servers
//! started here (certificates made with openssl at test time).

mod common;

use std::time::{Duration, Instant};

use common::secure::*;
use common::{dead_port, Proxy};
use etcdapi::{
    Client, Config, Credentials, Error, ErrorKind, ProtocolKind, SecureOptions, TlsFiles,
};

/// Every call of the API, on keys under `prefix`, succeeds and means what
/// it should.
fn every_call(c: &Client, prefix: &str) {
    let k = format!("{prefix}/k");
    c.set(&k, "v1").unwrap();
    assert_eq!(c.get(&k).unwrap().as_deref(), Some(&b"v1"[..]));
    c.set(format!("{prefix}/dir/a"), "a").unwrap();
    assert_eq!(
        c.get(format!("{prefix}/dir")).unwrap().as_deref(),
        Some(format!("{prefix}/dir/a").as_bytes())
    );
    c.set_with(&k, "v2", Some(b"v1"), 0).unwrap();
    assert!(c
        .set_with(&k, "v3", Some(b"nope"), 0)
        .unwrap_err()
        .is_refusal());
    c.set_with(format!("{prefix}/ttl"), "t", None, 5).unwrap();
    c.delete(format!("{prefix}/dir/a")).unwrap();
    assert!(c
        .delete(format!("{prefix}/dir/a"))
        .unwrap_err()
        .is_refusal());
    assert!(!c.leader().unwrap().is_empty());
    // A watch from history, then a live one.
    let first = c.watch(prefix, Some(1)).unwrap();
    assert_eq!(first.key, k.as_bytes());
    std::thread::scope(|s| {
        let w = s.spawn(|| c.watch(prefix, None));
        std::thread::sleep(Duration::from_millis(500));
        c.set(&k, "live").unwrap();
        let ev = w.join().unwrap().unwrap();
        assert_eq!(ev.value.as_deref(), Some(&b"live"[..]));
    });
    let idx = c.lock(format!("{prefix}/lock"), 5).unwrap();
    c.renew(format!("{prefix}/lock"), 5, &idx).unwrap();
    c.unlock(format!("{prefix}/lock"), &idx).unwrap();
    assert!(c
        .unlock(format!("{prefix}/lock"), &idx)
        .unwrap_err()
        .is_refusal());
}

fn tls_only() -> Setup {
    Setup {
        tls: true,
        ..Setup::default()
    }
}

fn files(cacert: Option<&str>, cert: Option<&str>, key: Option<&str>) -> TlsFiles {
    let c = certs();
    TlsFiles {
        cacert: cacert.map(|f| setting(c.path(f))),
        cert: cert.map(|f| setting(c.path(f))),
        key: key.map(|f| setting(c.path(f))),
    }
}

/// The error of a call that must fail, and how long it took.
fn failure<T: std::fmt::Debug>(call: impl FnOnce() -> Result<T, Error>) -> (Error, Duration) {
    let t = Instant::now();
    let e = call().expect_err("the call should have failed");
    (e, t.elapsed())
}

#[test]
fn tls_every_call_with_the_right_ca() {
    let etcd = Etcd::start(tls_only());
    every_call(&etcd.client(None), "/tls");

    // The certificate names localhost too.
    let c = Client::new(
        etcdapi::parse_server_list(&format!("https://localhost:{}", etcd.port)).unwrap(),
        etcd.config(None),
    )
    .unwrap();
    c.set("/tls/localhost", "yes").unwrap();

    // With a CA configured, a server written without a scheme is https.
    let c = Client::new(
        etcdapi::parse_server_list(&format!("127.0.0.1:{}", etcd.port)).unwrap(),
        etcd.config(None),
    )
    .unwrap();
    assert_eq!(
        c.get("/tls/localhost").unwrap().as_deref(),
        Some(&b"yes"[..])
    );

    // The v2 protocol over TLS.
    let mut config = etcd.config(None);
    config.protocol = ProtocolKind::V2;
    every_call(&Client::new(etcd.endpoints(), config).unwrap(), "/tls-v2");
}

#[test]
fn tls_failures_are_quick_and_say_why() {
    let etcd = Etcd::start(tls_only());
    let with = |tls: TlsFiles, url: String| {
        let config = Config {
            tls,
            ..etcd.config(None)
        };
        Client::new(etcdapi::parse_server_list(&url).unwrap(), config).unwrap()
    };

    // A CA that did not sign the server's certificate.
    let c = with(files(Some("other-ca.crt"), None, None), etcd.url());
    let (e, took) = failure(|| c.set("/x", "y"));
    let m = e.message();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
    assert!(
        m.contains("not signed by the CA in") && m.contains("other-ca.crt"),
        "{m}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Every call fails the same way, none hangs.
    let t = Instant::now();
    assert!(c.get("/x").is_err());
    assert!(c.leader().is_err());
    assert!(c.watch("/x", None).is_err());
    assert!(c.lock("/x", 5).is_err());
    assert!(c.delete("/x").is_err());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    // No CA: the system's roots, which do not know our test CA.
    let c = with(TlsFiles::default(), etcd.url());
    let (e, _) = failure(|| c.get("/x"));
    assert!(
        e.message().contains("system's root certificates"),
        "{}",
        e.message()
    );

    // Plain http to the TLS port.
    let c = with(
        TlsFiles::default(),
        format!("http://127.0.0.1:{}", etcd.port),
    );
    let (e, took) = failure(|| c.set("/x", "y"));
    assert!(
        e.message()
            .contains("if it is an https server, write https://"),
        "{}",
        e.message()
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let etcd = Etcd::start(Setup {
        tls: true,
        client_cert_auth: true,
        ..Setup::default()
    });
    let with = |tls: TlsFiles| {
        let config = Config {
            tls,
            ..etcd.config(None)
        };
        Client::new(etcd.endpoints(), config).unwrap()
    };

    let c = with(files(Some("ca.crt"), None, None));
    let (e, took) = failure(|| c.set("/mtls/x", "y"));
    // The server's alert, or (when it closes first) the cut connection.
    assert!(
        e.message().contains("asks for a client certificate")
            || e.message().contains("want a client certificate?"),
        "{}",
        e.message()
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");

    let c = with(files(
        Some("ca.crt"),
        Some("other-client.crt"),
        Some("other-client.key"),
    ));
    let (e, _) = failure(|| c.set("/mtls/x", "y"));
    assert!(
        (e.message().contains("refused the client certificate")
            || e.message().contains("refuse the client certificate"))
            && e.message().contains("other-client.crt"),
        "{}",
        e.message()
    );

    every_call(&etcd.client(None), "/mtls");
}

#[test]
fn bad_configuration_is_an_error_at_open() {
    let url = format!("https://127.0.0.1:{}", dead_port());
    let open = |tls: TlsFiles| {
        let config = Config {
            tls,
            ..Config::default()
        };
        Client::new(etcdapi::parse_server_list(&url).unwrap(), config)
    };
    let cases: &[(TlsFiles, &[&str])] = &[
        (
            files(Some("missing-ca.crt"), None, None),
            &["missing-ca.crt", "cannot read"],
        ),
        (
            files(Some("garbage.pem"), None, None),
            &["garbage.pem", "no certificate"],
        ),
        (
            files(Some("ca.key"), None, None),
            &["ca.key", "no certificate"],
        ),
        (
            files(Some("ca.crt"), Some("missing.crt"), Some("client.key")),
            &["missing.crt", "cannot read"],
        ),
        (
            files(Some("ca.crt"), Some("client.crt"), Some("missing.key")),
            &["missing.key", "cannot read"],
        ),
        (
            files(Some("ca.crt"), Some("client.crt"), Some("client-cn.key")),
            &["client-cn.key", "does not match", "client.crt"],
        ),
        (
            files(
                Some("ca.crt"),
                Some("client.crt"),
                Some("client-encrypted.key"),
            ),
            &["client-encrypted.key", "encrypted"],
        ),
        (
            files(Some("ca.crt"), Some("client.crt"), Some("ca.crt")),
            &["ca.crt", "no private key"],
        ),
        (
            files(Some("ca.crt"), Some("client.key"), Some("client.key")),
            &["client.key", "no certificate"],
        ),
    ];
    for (tls, words) in cases {
        match open(tls.clone()) {
            Ok(_) => panic!("{tls:?} accepted"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::BadArgument, "{e:?}");
                for w in *words {
                    assert!(e.message().contains(w), "{tls:?}: {}", e.message());
                }
            }
        }
    }
    // The same through options (what etcd_open_opts gives), with the
    // option named as the source.
    let certs = certs();
    let options = SecureOptions {
        cacert: Some(certs.path("nowhere.crt").display().to_string()),
        ..SecureOptions::default()
    };
    let e = Client::with_options(etcdapi::parse_server_list(&url).unwrap(), &options)
        .err()
        .unwrap();
    assert!(
        e.message().contains("nowhere.crt") && e.message().contains("option cacert"),
        "{}",
        e.message()
    );
    // A user without a password, a password without a user (with no
    // variables at all); a user turned off ("") takes the password along.
    let no_vars = |_: &str| Ok(None);
    let without_password = SecureOptions {
        user: Some("alice".into()),
        password: Some(String::new()),
        ..SecureOptions::default()
    };
    let e = Config::from_vars(&without_password, no_vars).unwrap_err();
    assert!(e.contains("no password"), "{e}");
    let without_user = SecureOptions {
        password: Some("hunter2".into()),
        ..SecureOptions::default()
    };
    let e = Config::from_vars(&without_user, no_vars).unwrap_err();
    assert!(e.contains("no user") && !e.contains("hunter2"), "{e}");
    let user_off = SecureOptions {
        user: Some(String::new()),
        password: Some("hunter2".into()),
        ..SecureOptions::default()
    };
    assert!(Config::from_vars(&user_off, no_vars)
        .unwrap()
        .credentials
        .is_none());
    // Good files: the session opens (and the first call fails: no server).
    let good = open(files(
        Some("ca.crt"),
        Some("client.crt"),
        Some("client.key"),
    ))
    .unwrap();
    assert_eq!(good.get("/x").unwrap_err().kind(), ErrorKind::Unavailable);
}

#[test]
fn auth_every_call_with_the_right_password_and_refusals() {
    let etcd = Etcd::start(Setup {
        auth: true,
        ..Setup::default()
    });
    every_call(&etcd.root(), "/auth-root");

    // alice may use /app/ only.
    let alice = etcd.client(Some(Credentials::new("alice", ALICE_PASSWORD)));
    alice.set("/app/x/a", "1").unwrap();
    assert_eq!(alice.get("/app/x/a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(alice.watch("/app/x", Some(1)).unwrap().key, b"/app/x/a");
    alice.delete("/app/x/a").unwrap();
    let denied = |r: Result<(), Error>, what: &str| match r {
        Err(e) if e.is_refusal() => {
            assert!(e.message().contains("permission denied"), "{what}: {e}")
        }
        other => panic!("{what}: {other:?}"),
    };
    denied(alice.set("/other", "x"), "set outside /app/");
    denied(alice.get("/other").map(drop), "get outside /app/");
    denied(alice.delete("/other"), "delete outside /app/");
    denied(alice.watch("/other", None).map(drop), "watch outside /app/");
    denied(
        alice.lock("/app/lock", 5).map(drop),
        "lock (under /_locks/)",
    );

    // No credentials: etcd's refusal, and what to do about it.
    let anonymous = etcd.client(None);
    for r in [
        anonymous.set("/x", "y"),
        anonymous.watch("/x", None).map(drop),
        anonymous.lock("/x", 5).map(drop),
    ] {
        match r {
            Err(e) if e.is_refusal() => assert!(e.message().contains("ETCDAPI_USER"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    // A wrong password: refused at once, on every call, one login
    // attempt per call (no loop), the password in no message.
    let proxy = Proxy::start(&format!("127.0.0.1:{}", etcd.port));
    let wrong = Client::new(
        etcdapi::parse_server_list(&proxy.endpoint()).unwrap(),
        etcd.config(Some(Credentials::new("root", "hunter2-wrong"))),
    )
    .unwrap();
    let t = Instant::now();
    let results: Vec<Error> = vec![
        wrong.set("/x", "y").unwrap_err(),
        wrong.get("/x").unwrap_err(),
        wrong.delete("/x").unwrap_err(),
        wrong.watch("/x", None).unwrap_err(),
        wrong.lock("/x", 5).unwrap_err(),
        wrong.leader().unwrap_err(),
    ];
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    for e in &results {
        assert!(e.is_refusal(), "{e:?}");
        let m = e.message();
        assert!(
            m.contains("authentication as user \"root\" failed") && !m.contains("hunter2"),
            "{m}"
        );
    }
    assert_eq!(proxy.auth_requests(), results.len());
}

#[test]
fn an_expired_token_is_renewed_transparently() {
    let etcd = Etcd::start(Setup {
        auth: true,
        token_ttl: Some(2),
        ..Setup::default()
    });
    let proxy = Proxy::start(&format!("127.0.0.1:{}", etcd.port));
    let c = Client::new(
        etcdapi::parse_server_list(&proxy.endpoint()).unwrap(),
        etcd.config(Some(Credentials::new("root", ROOT_PASSWORD))),
    )
    .unwrap();
    // Idle longer than the token's ttl (etcd checks once a second).
    let idle = || std::thread::sleep(Duration::from_secs(4));

    // A loop of calls with a pause in the middle: the token expires there
    // and is renewed once, without the caller seeing anything.
    for i in 0..6 {
        if i == 3 {
            idle();
        }
        c.set("/exp/k", i.to_string()).unwrap();
        assert_eq!(
            c.get("/exp/k").unwrap().as_deref(),
            Some(i.to_string().as_bytes())
        );
    }
    assert_eq!(proxy.auth_requests(), 2, "one login, one renewal");

    // A watch opened with an expired token is canceled by etcd, logged in
    // again and opened again.
    idle();
    let watches = proxy.watch_requests();
    let ev = c.watch("/exp", Some(1)).unwrap();
    assert_eq!(ev.key, b"/exp/k");
    assert_eq!(
        proxy.watch_requests() - watches,
        2,
        "canceled, then reopened"
    );
    assert_eq!(proxy.auth_requests(), 3);

    // A lock after the token expired.
    idle();
    let idx = c.lock("/exp/lock", 5).unwrap();
    c.unlock("/exp/lock", &idx).unwrap();
    assert_eq!(proxy.auth_requests(), 4);
}

#[test]
fn client_certificate_and_password_together() {
    let etcd = Etcd::start(Setup {
        tls: true,
        client_cert_auth: true,
        auth: true,
        token_ttl: None,
    });
    // The client certificate has no Common Name: the gateway takes it.
    every_call(&etcd.root(), "/both");

    let wrong = etcd.client(Some(Credentials::new("root", "wrong")));
    assert!(wrong.set("/x", "y").unwrap_err().is_refusal());

    // A certificate with a Common Name is refused by the gateway once
    // authentication is on: say so.
    let config = Config {
        tls: files(Some("ca.crt"), Some("client-cn.crt"), Some("client-cn.key")),
        ..etcd.config(Some(Credentials::new("root", ROOT_PASSWORD)))
    };
    let c = Client::new(etcd.endpoints(), config).unwrap();
    let (e, _) = failure(|| c.set("/x", "y"));
    assert!(
        e.message().contains("CommonName") && e.message().contains("without a Common Name"),
        "{}",
        e.message()
    );
}
