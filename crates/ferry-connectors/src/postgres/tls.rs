//! TLS to PostgreSQL (rustls, through sqlx): `ssl_mode` mapped to sqlx's options, and the
//! connection attempts libpq makes for `allow` and `prefer`.
//!
//! What each mode guarantees: `require`, `verify-ca` and `verify-full` never talk to the
//! server without TLS (sqlx fails when the server answers the TLS request with "no"), so a
//! password is never sent in clear text for them, whatever authentication the server asks
//! for; `verify-*` also check the server's certificate (against `ca_certificate` and, as
//! sqlx builds its root store, the public CAs of Mozilla's roots), `verify-full` its name.
//! `allow` and `prefer` may end up in plain text, as libpq's do.

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};

use super::SslMode;

/// `options` with the connection's `ssl_mode` (absent: `prefer`, libpq's default). The PEM
/// texts are handed over inline (`*_from_pem`): sqlx would take any other text for a file
/// name on the data plane.
pub(crate) fn with_ssl_mode(options: PgConnectOptions, ssl: Option<&SslMode>) -> PgConnectOptions {
    let mode = match ssl {
        Some(SslMode::Disable) => PgSslMode::Disable,
        Some(SslMode::Allow) => PgSslMode::Allow,
        None | Some(SslMode::Prefer) => PgSslMode::Prefer,
        Some(SslMode::Require) => PgSslMode::Require,
        Some(SslMode::VerifyCa(_)) => PgSslMode::VerifyCa,
        Some(SslMode::VerifyFull(_)) => PgSslMode::VerifyFull,
    };
    let mut options = options.ssl_mode(mode);
    if let Some(certificates) = ssl.and_then(SslMode::certificates) {
        options = options.ssl_root_cert_from_pem(certificates.ca_certificate.clone().into_bytes());
        if let (Some(certificate), Some(key)) =
            (&certificates.client_certificate, &certificates.client_key)
        {
            options = options
                .ssl_client_cert_from_pem(certificate)
                .ssl_client_key_from_pem(key);
        }
    }
    options
}

/// Opens a connection as libpq would for the mode. sqlx implements `prefer` as "TLS if the
/// server offers it" and `allow` as `disable`; libpq also retries: `prefer` in plain text
/// when the TLS connection is refused (a `hostnossl` server) or its handshake fails,
/// `allow` with TLS when the plain connection is refused (a `hostssl` server). The error
/// reported when both fail is the TLS attempt's.
pub(crate) async fn connect(options: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    let first = PgConnection::connect_with(options).await;
    let result = match (options.get_ssl_mode(), first) {
        (PgSslMode::Prefer, Err(error @ (sqlx::Error::Database(_) | sqlx::Error::Tls(_)))) => {
            tracing::debug!(%error, "TLS connection refused; retrying in plain text (ssl_mode prefer)");
            let plain = options.clone().ssl_mode(PgSslMode::Disable);
            PgConnection::connect_with(&plain).await.map_err(|_| error)
        }
        (PgSslMode::Allow, Err(error @ sqlx::Error::Database(_))) => {
            tracing::debug!(%error, "plain connection refused; retrying with TLS (ssl_mode allow)");
            let encrypted = options.clone().ssl_mode(PgSslMode::Require);
            PgConnection::connect_with(&encrypted).await
        }
        (_, result) => result,
    };
    result.map_err(explained)
}

/// A TLS failure (which sqlx passes on as an I/O error when rustls refused the server's
/// certificate) as `sqlx::Error::Tls`, a configuration error, saying what the user can do
/// about it; other errors as they are.
fn explained(error: sqlx::Error) -> sqlx::Error {
    let rustls_error = match &error {
        sqlx::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        sqlx::Error::Tls(cause) => cause.downcast_ref::<rustls::Error>(),
        _ => None,
    };
    let (hint, cause) = match (rustls_error, &error) {
        (Some(rustls_error), _) => (hint(rustls_error), rustls_error.to_string()),
        (None, sqlx::Error::Tls(cause)) if cause.to_string().contains("does not support TLS") => (
            "the server does not offer TLS (its `ssl` setting is off); use ssl_mode disable, \
             allow or prefer, or turn TLS on in the server",
            cause.to_string(),
        ),
        (None, sqlx::Error::Tls(cause)) => ("the TLS connection failed", cause.to_string()),
        _ => return error,
    };
    sqlx::Error::Tls(format!("{hint} ({cause})").into())
}

fn hint(error: &rustls::Error) -> &'static str {
    use rustls::{AlertDescription, CertificateError, Error};
    match error {
        Error::InvalidCertificate(
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::UnsupportedSignatureAlgorithmContext { .. },
        ) => {
            "the server's certificate is not signed by the CA of ssl_mode.ca_certificate (nor \
             by a public CA)"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the server's certificate does not name the host connected to (verify-full checks \
             it: connect by a name or address the certificate lists, or use verify-ca)"
        }
        Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is expired or not yet valid",
        Error::InvalidCertificate(_) => "the server's certificate was not accepted",
        Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => {
            "the server refused the client certificate, or wants one (ssl_mode.client_certificate \
             and client_key)"
        }
        _ => "the TLS handshake failed",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;
    use crate::config::shaped;

    #[test]
    fn each_mode_maps_to_sqlx() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        for (ssl_mode, expected) in [
            (None, PgSslMode::Prefer),
            (Some(json!("disable")), PgSslMode::Disable),
            (Some(json!("allow")), PgSslMode::Allow),
            (Some(json!("prefer")), PgSslMode::Prefer),
            (Some(json!("require")), PgSslMode::Require),
            (
                Some(json!({"mode": "verify-ca", "ca_certificate": ca})),
                PgSslMode::VerifyCa,
            ),
            (
                Some(json!({"mode": "verify-full", "ca_certificate": ca})),
                PgSslMode::VerifyFull,
            ),
        ] {
            let ssl: Option<SslMode> = ssl_mode.map(|value| shaped(&value).unwrap());
            let options = with_ssl_mode(PgConnectOptions::new_without_pgpass(), ssl.as_ref());
            assert_eq!(
                format!("{:?}", options.get_ssl_mode()),
                format!("{expected:?}"),
                "{ssl:?}"
            );
        }
    }

    #[test]
    fn tls_failures_say_what_to_fix() {
        use rustls::CertificateError;
        let explain = |error: rustls::Error| {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
            let explained = explained(sqlx::Error::Io(io));
            assert!(matches!(explained, sqlx::Error::Tls(_)), "{explained}");
            explained.to_string()
        };
        let said = explain(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        assert!(
            said.contains("not signed by the CA of ssl_mode.ca_certificate")
                && said.contains("UnknownIssuer"),
            "{said}"
        );
        let said = explain(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        assert!(said.contains("does not name the host"), "{said}");
        let said = explain(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert!(said.contains("client certificate"), "{said}");
        let refused = explained(sqlx::Error::Tls("server does not support TLS".into()));
        assert!(
            refused.to_string().contains("does not offer TLS"),
            "{refused}"
        );
        // Other errors are left as they are.
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(matches!(
            explained(sqlx::Error::Io(reset)),
            sqlx::Error::Io(_)
        ));
        assert!(matches!(
            explained(sqlx::Error::Protocol("x".into())),
            sqlx::Error::Protocol(_)
        ));
    }
}
