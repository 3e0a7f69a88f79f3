//! Servers etcd would never be: garbage, half answers, wrong shapes, HTML
//! errors, stalls, endless bodies. Every call must come back with its
//! error value, with a message, within the time-outs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use etcdapi::{Client, Config, Endpoint, Error, ErrorKind};

/// A fake HTTP server answering every request with `respond`.
fn fake(respond: fn(&mut TcpStream)) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                read_request(&mut conn);
                respond(&mut conn);
            });
        }
    });
    Endpoint::new("127.0.0.1", port)
}

/// Reads one request (headers and a Content-Length body) and returns.
fn read_request(conn: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = conn.read_exact(&mut body);
}

/// A whole answer. The fake closes the connection after it, so it says so
/// (`Connection: close`), as HTTP/1.1 asks of a server that does not keep
/// connections: otherwise a client may reuse the connection before the
/// close reaches it, and meet a reset instead of this answer.
fn answer(conn: &mut TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

fn client(server: Endpoint) -> Client {
    let config = Config {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(1000),
        ..Config::default()
    };
    Client::new(vec![server], config).unwrap()
}

/// One of the calls, results dropped.
type Call = Box<dyn Fn(&Client) -> Result<(), Error>>;

/// Runs every unary call against `server`; each must fail, with a message,
/// in well under the bound.
fn every_call_fails(server: Endpoint) -> Vec<Error> {
    let c = client(server);
    let mut errors = Vec::new();
    let calls: Vec<(&str, Call)> = vec![
        ("get", Box::new(|c| c.get("/k").map(|_| ()))),
        ("set", Box::new(|c| c.set("/k", "v"))),
        ("cas", Box::new(|c| c.set_with("/k", "v", Some(b"p"), 0))),
        ("ttl", Box::new(|c| c.set_with("/k", "v", None, 5))),
        ("delete", Box::new(|c| c.delete("/k"))),
        ("leader", Box::new(|c| c.leader().map(|_| ()))),
        ("renew", Box::new(|c| c.renew("/k", 5, "4d2"))),
        ("unlock", Box::new(|c| c.unlock("/k", "4d2"))),
    ];
    for (name, call) in calls {
        let t = Instant::now();
        let r = call(&c);
        let took = t.elapsed();
        let e = r.expect_err(name);
        assert!(!e.message().is_empty(), "{name}: empty message");
        assert!(took < Duration::from_secs(5), "{name} took {took:?}");
        errors.push(e);
    }
    errors
}

#[test]
fn garbage_bytes() {
    let errors = every_call_fails(fake(|c| {
        let _ = c.write_all(b"\x00\x01\x02 this is not http\r\n\r\n");
    }));
    assert!(errors.iter().all(|e| !e.is_refusal()), "{errors:?}");
}

#[test]
fn truncated_json() {
    let errors = every_call_fails(fake(|c| {
        answer(c, "200 OK", "application/json", r#"{"header":{"revision":"#)
    }));
    assert!(
        errors.iter().all(|e| e.kind() == ErrorKind::BadResponse),
        "{errors:?}"
    );
}

#[test]
fn json_of_the_wrong_shape() {
    every_call_fails(fake(|c| {
        answer(
            c,
            "200 OK",
            "application/json",
            r#"{"kvs":"nope","responses":7,"ID":[1],"TTL":{},"leader":-1}"#,
        )
    }));
    every_call_fails(fake(|c| answer(c, "200 OK", "application/json", "[1,2,3]")));
}

#[test]
fn html_errors() {
    for respond in [
        (|c: &mut TcpStream| {
            answer(
                c,
                "500 Internal Server Error",
                "text/html",
                "<html><body>boom</body></html>",
            )
        }) as fn(&mut TcpStream),
        |c| {
            answer(
                c,
                "503 Service Unavailable",
                "text/html",
                "<html>busy</html>",
            )
        },
        |c| {
            answer(
                c,
                "404 Not Found",
                "text/html",
                "<html>404 page not found</html>",
            )
        },
    ] {
        let errors = every_call_fails(fake(respond));
        assert!(errors.iter().all(|e| !e.is_refusal()), "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.message().contains("HTTP 5") || e.message().contains("HTTP 404")),
            "{errors:?}"
        );
    }
}

#[test]
fn content_length_longer_than_the_body_then_a_stall() {
    every_call_fails(fake(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"header\":");
        std::thread::sleep(Duration::from_secs(30));
    }));
}

#[test]
fn a_server_that_never_answers() {
    every_call_fails(fake(|_| std::thread::sleep(Duration::from_secs(30))));
}

#[test]
fn an_endless_body_is_cut_off() {
    // Chunked, forever: the call must give up (size cap or time-out)
    // rather than buffer without bound.
    every_call_fails(fake(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 65536, "a".repeat(65536));
        while c.write_all(chunk.as_bytes()).is_ok() {}
    }));
}

#[test]
fn a_watch_stream_that_stops_mid_line() {
    let server = fake(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let created = "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n";
        let half = "{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2s";
        for part in [created, half] {
            let _ = write!(c, "{:x}\r\n{part}\r\n", part.len());
        }
        // ...and the connection ends without the rest.
    });
    let c = client(server);
    let t = Instant::now();
    let e = c.watch("/k", None).unwrap_err();
    assert!(e.kind() == ErrorKind::Unavailable, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_watch_stream_of_garbage_lines() {
    let server = fake(|c| {
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let line = "this is not json\n";
        let _ = write!(c, "{:x}\r\n{line}\r\n", line.len());
        std::thread::sleep(Duration::from_secs(30));
    });
    let e = client(server).watch("/k", Some(3)).unwrap_err();
    assert!(e.kind() == ErrorKind::BadResponse, "{e:?}");
}
