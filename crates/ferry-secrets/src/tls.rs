//! The HTTP client the managers are called with: rustls (no OpenSSL), the system's roots
//! (`rustls-native-certs`, which honours `SSL_CERT_FILE`) plus an optional CA file, and
//! bounded timeouts.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::{CONNECT_TIMEOUT, REQUEST_TIMEOUT, Result, SecretsError};

pub(crate) fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_cert {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certificates| certificates.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|error| {
                SecretsError::Config(format!("CA certificate file {}: {error}", path.display()))
            })?;
        if certificates.is_empty() {
            return Err(SecretsError::Config(format!(
                "CA certificate file {}: no PEM certificate in it",
                path.display()
            )));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| {
                SecretsError::Config(format!("CA certificate file {}: {error}", path.display()))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| SecretsError::Config(format!("TLS settings: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|error| SecretsError::Config(format!("HTTP client: {error}")))
}
