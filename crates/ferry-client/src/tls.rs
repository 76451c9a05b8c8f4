//! How Ferry's HTTP clients reach a control plane: rustls (no OpenSSL) trusting the system's
//! root certificates (read by `rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR` as OpenSSL does) plus an optional CA file, and a one-line cause for a
//! control plane that cannot be reached.

use std::error::Error as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::CertificateError;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// How a client connects, beside the URL.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// A PEM file of CA certificates (or the server's own certificate) trusted besides the
    /// system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Connect to this address whatever the URL's host name resolves to (the certificate is
    /// still checked against that name), as curl's `--connect-to`.
    pub connect_to: Option<SocketAddr>,
}

/// The rustls settings of a client: the system's roots and `ca_cert`'s certificates.
pub(crate) fn client_config(ca_cert: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "reading the system's root certificates");
    }
    let (system, _unparsable) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_cert {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|error| format!("CA certificate file {}: {error}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!(
                "CA certificate file {}: no PEM certificate in it",
                path.display()
            ));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| format!("CA certificate file {}: {error}", path.display()))?;
        }
    }
    tracing::debug!(
        system,
        total = roots.len(),
        "trusted root certificates loaded"
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS settings: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The control plane speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Why a request did not get through, in one line: the server (scheme, host and port) and
/// the cause (DNS lookup, refused, TLS handshake, certificate not trusted, …), from the
/// error's source chain.
pub fn describe(error: &reqwest::Error) -> String {
    let cause = cause(error);
    match error.url() {
        Some(url) => format!("{}: {cause}", url.origin().ascii_serialization()),
        None => cause,
    }
}

fn cause(error: &reqwest::Error) -> String {
    let mut dns = false;
    let mut innermost = error.to_string();
    let mut current: Option<&(dyn std::error::Error + 'static)> = error.source();
    while let Some(source) = current {
        if let Some(tls) = source.downcast_ref::<rustls::Error>() {
            return tls_cause(tls);
        }
        let mut next = source.source();
        if let Some(io) = source.downcast_ref::<std::io::Error>() {
            // An io::Error's `source()` skips the error it wraps: go into that one.
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
            }
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused".to_owned(),
                ConnectionReset | ConnectionAborted => {
                    return "connection reset by the server".to_owned();
                }
                TimedOut => return "connection timed out".to_owned(),
                _ => {}
            }
        }
        let text = source.to_string();
        dns |= text.starts_with("dns error");
        innermost = text;
        current = next;
    }
    let plain_http = error.url().is_some_and(|url| url.scheme() == "http");
    if dns {
        format!("DNS lookup failed: {innermost}")
    } else if error.is_timeout() {
        "timed out".to_owned()
    } else if plain_http && innermost.contains("invalid HTTP version") {
        format!("the server does not answer plain HTTP (does it serve https://?): {innermost}")
    } else if innermost.contains("connection closed before message completed") {
        // A server that is stopping closes this way, and so does one that serves only
        // HTTPS and is sent plain HTTP: the cause names both, blaming neither.
        let https = match plain_http {
            true => ", or it serves only https://",
            false => "",
        };
        format!(
            "the server closed the connection without answering (stopping or restarting{https})"
        )
    } else {
        innermost
    }
}

fn tls_cause(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "TLS: certificate not trusted (unknown issuer): pass its CA with --ca-cert or FERRY_CA_CERT".to_owned()
        }
        rustls::Error::InvalidCertificate(certificate)
            if certificate.to_string().contains("CaUsedAsEndEntity") =>
        {
            "TLS: certificate rejected: the server presents a CA certificate (CA:TRUE), not a server one".to_owned()
        }
        rustls::Error::InvalidCertificate(certificate) => {
            format!("TLS: certificate rejected: {certificate}")
        }
        rustls::Error::InvalidMessage(_) => {
            "TLS handshake failed: the server does not speak TLS (is it http://?)".to_owned()
        }
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[tokio::test]
    async fn a_refused_connection_says_so_in_one_line() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(super::client_config(None).unwrap())
            .build()
            .unwrap();
        let error = client
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            super::describe(&error),
            format!("https://127.0.0.1:{port}: connection refused")
        );
    }

    /// A plain-HTTP request to `reply`: a server that reads it and sends `reply`, then closes.
    async fn plain_request_answered_with(reply: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            socket.write_all(reply).await.unwrap();
        });
        let error = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .unwrap_err();
        server.await.unwrap();
        super::describe(&error)
    }

    #[tokio::test]
    async fn a_server_that_closes_without_answering_is_not_said_to_be_https() {
        let said = plain_request_answered_with(b"").await;
        assert!(
            said.contains("closed the connection without answering (stopping or restarting, or it serves only https://)"),
            "{said}"
        );
    }

    #[tokio::test]
    async fn a_server_that_answers_in_tls_is_said_to_serve_https() {
        // A TLS alert record (fatal, protocol version): what a TLS server may send to a
        // request it cannot read.
        let said = plain_request_answered_with(b"\x15\x03\x03\x00\x02\x02\x46").await;
        assert!(
            said.contains("does not answer plain HTTP (does it serve https://?)"),
            "{said}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let file = tempfile_path("not a certificate\n");
        let error = super::client_config(Some(&file)).unwrap_err();
        assert!(error.contains("no PEM certificate"), "{error}");
        let _ = std::fs::remove_file(file);
    }

    fn tempfile_path(content: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("ferry-client-ca-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        path
    }
}
