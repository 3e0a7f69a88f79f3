//! Server lists: parsing `etcd_open_str` strings and `etcd_server` arrays
//! into endpoints.

use std::fmt;

/// etcd's client port today (the original library's 4001 is no longer served).
pub const DEFAULT_PORT: u16 = 2379;

/// One etcd member's client URL, reduced to what we need. Two endpoints
/// are equal when they name the same URL, however they were written.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub tls: bool,
    /// False when written without `http://` or `https://`: such a server
    /// is reached over https when TLS files are configured.
    pub scheme_given: bool,
    pub host: String,
    pub port: u16,
}

impl PartialEq for Endpoint {
    fn eq(&self, other: &Endpoint) -> bool {
        (self.tls, &self.host, self.port) == (other.tls, &other.host, other.port)
    }
}

impl Eq for Endpoint {}

impl std::hash::Hash for Endpoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.tls, &self.host, self.port).hash(state);
    }
}

impl Endpoint {
    pub fn new(host: &str, port: u16) -> Endpoint {
        Endpoint {
            tls: false,
            scheme_given: false,
            host: host.to_string(),
            port,
        }
    }

    /// `http://host:port` (or https), with IPv6 hosts in brackets.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_url())
    }
}

/// Characters that separate items in a server string, as in the original.
const SEPARATORS: &[char] = &['\n', '\r', '\t', ' ', ',', ';'];

/// Parses `host[:port]` items separated by any of `\n\r\t ,;`, each
/// optionally written as `http://host:port` or `https://host:port`.
///
/// Fails on an empty list or on any malformed item: a bad port must not
/// silently become port 0 or be skipped.
pub fn parse_server_list(s: &str) -> Result<Vec<Endpoint>, String> {
    let mut out = Vec::new();
    for item in s.split(SEPARATORS).filter(|i| !i.is_empty()) {
        out.push(parse_endpoint(item)?);
    }
    if out.is_empty() {
        return Err("no server in the list".to_string());
    }
    Ok(out)
}

/// Parses one item: `host`, `host:port`, `[v6]:port`, with an optional
/// `http://` / `https://` scheme and an optional trailing `/`.
pub fn parse_endpoint(item: &str) -> Result<Endpoint, String> {
    let (tls, scheme_given, rest) = if let Some(r) = strip_prefix_ci(item, "https://") {
        (true, true, r)
    } else if let Some(r) = strip_prefix_ci(item, "http://") {
        (false, true, r)
    } else if item.contains("://") {
        return Err(format!("unsupported scheme in server {item:?}"));
    } else {
        (false, false, item)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = split_host_port(rest).map_err(|e| format!("server {item:?}: {e}"))?;
    if host.is_empty() {
        return Err(format!("server {item:?}: empty host name"));
    }
    // A bracket left in the host (`:[]:1:2379`, `[[::1]`) would make a
    // URL naming another server.
    if host
        .chars()
        .any(|c| c.is_control() || matches!(c, '/' | '@' | '?' | '#' | '[' | ']'))
    {
        return Err(format!("server {item:?}: bad host name"));
    }
    Ok(Endpoint {
        tls,
        scheme_given,
        host: host.to_string(),
        port,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) {
        let (head, tail) = s.split_at(prefix.len());
        if head.eq_ignore_ascii_case(prefix) {
            return Some(tail);
        }
    }
    None
}

fn split_host_port(s: &str) -> Result<(&str, u16), String> {
    if let Some(v6) = s.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed '['")?;
        let host = &v6[..end];
        let after = &v6[end + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, parse_port(p)?)),
            None if after.is_empty() => Ok((host, DEFAULT_PORT)),
            None => Err("junk after ']'".to_string()),
        };
    }
    match s.rfind(':') {
        // More than one ':' without brackets: a bare IPv6 address.
        Some(_) if s.matches(':').count() > 1 => Ok((s, DEFAULT_PORT)),
        Some(i) => Ok((&s[..i], parse_port(&s[i + 1..])?)),
        None => Ok((s, DEFAULT_PORT)),
    }
}

/// The port is the leading decimal digits, as the original read it with
/// `strtoul` (`host:2379'` names port 2379); no digits, 0 or more than
/// 65535 is an error, never a silent 0.
fn parse_port(p: &str) -> Result<u16, String> {
    let digits = p.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("bad port {p:?}"));
    }
    match p[..digits].parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("port {p} out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let l = parse_server_list("a:1, b;c:3\thttp://d:4\nhttps://e:5/ [::1]:6 ::1").unwrap();
        let got: Vec<String> = l.iter().map(|e| e.base_url()).collect();
        assert_eq!(
            got,
            [
                "http://a:1",
                "http://b:2379",
                "http://c:3",
                "http://d:4",
                "https://e:5",
                "http://[::1]:6",
                "http://[::1]:2379"
            ]
        );
    }

    #[test]
    fn bad_ports_and_empty() {
        for s in [
            "",
            " ,;\n",
            "h:abc",
            "h:99999",
            "h:",
            "h:0",
            ":80",
            "ftp://h:1",
            "h:-1",
            "h:x80",
            "h:65536'",
            "h:00",
            ":[]:1:55405",
            "[[::1]:80",
            "a]b",
        ] {
            assert!(parse_server_list(s).is_err(), "{s:?} accepted");
        }
    }

    #[test]
    fn port_is_the_leading_digits() {
        for (s, port) in [
            ("h:2379'", 2379),
            ("h:80x", 80),
            ("[::1]:7\"", 7),
            ("h:0042", 42),
        ] {
            assert_eq!(parse_server_list(s).unwrap()[0].port, port, "{s:?}");
        }
    }
}
