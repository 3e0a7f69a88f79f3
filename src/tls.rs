//! TLS for `https` servers (rustls): the CA file or the system's roots,
//! and a client certificate, read and checked when a session opens so
//! that a bad file is reported at once, by name; and the words for a
//! handshake that fails later.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig};

use crate::config::{Setting, TlsFiles};

/// Where the system's root certificates usually are (Debian/Ubuntu,
/// Fedora/RHEL, openSUSE, Alpine and others), after `SSL_CERT_FILE`.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The TLS configuration for a session's agent. Every file is read and
/// checked here: unreadable, not PEM, no certificate, a key that does not
/// belong to the certificate.
pub fn load(files: &TlsFiles) -> Result<TlsConfig, String> {
    let roots = match &files.cacert {
        Some(ca) => {
            let certs = certificates(ca, "CA file")?;
            let mut store = rustls::RootCertStore::empty();
            let (added, _) = store
                .add_parsable_certificates(certs.iter().map(|c| CertificateDer::from(c.der())));
            if added == 0 {
                return Err(format!(
                    "CA file {}: no usable CA certificate in it",
                    name(ca)
                ));
            }
            RootCerts::new_with_certs(&certs)
        }
        None => system_roots(),
    };
    let client = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => Some(client_cert(cert, key)?),
        _ => None,
    };
    Ok(TlsConfig::builder()
        .root_certs(roots)
        .client_cert(client)
        .build())
}

/// `/path (SOURCE)`, naming a file in messages.
pub fn name(s: &Setting<PathBuf>) -> String {
    format!("{} ({})", s.value.display(), s.source)
}

fn read(s: &Setting<PathBuf>, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(&s.value).map_err(|e| format!("{what} {}: cannot read it: {e}", name(s)))
}

fn pem_items(s: &Setting<PathBuf>, what: &str) -> Result<Vec<PemItem<'static>>, String> {
    let bytes = read(s, what)?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} {}: not a PEM file: {e}", name(s)))
}

fn certificates(s: &Setting<PathBuf>, what: &str) -> Result<Vec<Certificate<'static>>, String> {
    let certs: Vec<_> = pem_items(s, what)?
        .into_iter()
        .filter_map(|item| match item {
            PemItem::Certificate(c) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!(
            "{what} {}: no certificate (BEGIN CERTIFICATE) in it",
            name(s)
        ));
    }
    Ok(certs)
}

fn client_cert(cert: &Setting<PathBuf>, key: &Setting<PathBuf>) -> Result<ClientCert, String> {
    let chain = certificates(cert, "client certificate file")?;
    let key_pem = read(key, "client key file")?;
    let private = ureq::tls::parse_pem(&key_pem).find_map(|item| match item {
        Ok(PemItem::PrivateKey(k)) => Some(k),
        _ => None,
    });
    let (Some(private), Ok(key_der)) = (private, PrivateKeyDer::from_pem_slice(&key_pem)) else {
        let why = if String::from_utf8_lossy(&key_pem).contains("ENCRYPTED") {
            "the key is encrypted, which is not supported: decrypt it (openssl pkey -in KEY -out PLAIN)"
        } else {
            "no private key (BEGIN PRIVATE KEY) in it"
        };
        return Err(format!("client key file {}: {why}", name(key)));
    };
    // The check rustls makes when the first connection is set up (where
    // ureq would give up with a panic): the key must be usable and be the
    // certificate's.
    let chain_der: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let provider = rustls::crypto::ring::default_provider();
    match rustls::sign::CertifiedKey::from_der(chain_der, key_der, &provider) {
        Ok(_) => Ok(ClientCert::new_with_certs(&chain, private)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(format!(
            "client key file {} does not match the certificate in {}",
            name(key),
            name(cert)
        )),
        Err(e) => Err(format!(
            "client certificate {} with key {}: unusable: {e}",
            name(cert),
            name(key)
        )),
    }
}

/// The system's root certificates: the bundle named by `SSL_CERT_FILE`,
/// else the first usual bundle that has certificates in it, else the
/// Mozilla roots built into the library.
fn system_roots() -> RootCerts {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let paths = from_env
        .iter()
        .map(PathBuf::as_path)
        .chain(SYSTEM_BUNDLES.iter().map(Path::new));
    for path in paths {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&bytes)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return RootCerts::new_with_certs(&certs);
        }
    }
    RootCerts::WebPki
}

/// The TLS failure inside a ureq error, if it is one.
pub fn cause(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

/// What a TLS failure most likely means, in the session's terms.
pub fn explain(err: &rustls::Error, files: &TlsFiles, host: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let what = match err {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => match &files.cacert {
            Some(ca) => format!(
                "the server's certificate is not signed by the CA in {}",
                name(ca)
            ),
            None => "the server's certificate is not signed by any of the system's root \
                     certificates (give its CA's file in ETCDAPI_CACERT)"
                .to_string(),
        },
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            format!("the server's certificate is not valid for the name {host}")
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired".to_string()
        }
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet".to_string()
        }
        E::AlertReceived(
            A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::UnsupportedCertificate
            | A::CertificateUnknown
            | A::HandshakeFailure
            | A::AccessDenied,
        ) => match &files.cert {
            None => "the server asks for a client certificate (set ETCDAPI_CERT and ETCDAPI_KEY)"
                .to_string(),
            Some(cert) => format!("the server refused the client certificate {}", name(cert)),
        },
        E::InvalidMessage(_) => "the server does not speak TLS (use http:// for it?)".to_string(),
        _ => return format!("TLS failed: {err}"),
    };
    format!("TLS failed: {err}: {what}")
}

/// A TLS server that refuses a client certificate (or its absence) may
/// close the connection before its alert can be read: the request's write
/// then fails. Say what it likely means.
pub fn cut_hint(io: &std::io::Error, files: &TlsFiles) -> String {
    use std::io::ErrorKind::*;
    if !matches!(io.kind(), BrokenPipe | ConnectionReset) {
        return String::new();
    }
    match &files.cert {
        None => " (does the server want a client certificate? set ETCDAPI_CERT and ETCDAPI_KEY)"
            .to_string(),
        Some(cert) => format!(
            " (did the server refuse the client certificate {}?)",
            name(cert)
        ),
    }
}
