//! HTTPS for the control plane: rustls with a certificate and key read from PEM files and
//! read again when either file changes, so that a rotation (cert-manager renewing a
//! Kubernetes secret, an operator copying new files) needs no restart.
//!
//! Each TLS handshake asks [`ReloadingCert`] for the certificate; it first compares the two
//! files' modification time, length and inode with those last read (two `stat` calls, much
//! cheaper than the handshake itself) and reads them again only when they differ. A pair that
//! does not load (a file half written, a key that does not match the new certificate yet) is
//! logged and the previous certificate kept; it is tried again when a file changes once more,
//! or after a few seconds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How long a pair of files that failed to load waits before it is read again unchanged.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(5);

/// The certificate the control plane presents, swapped when its files change.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    checked: Mutex<Checked>,
}

#[derive(Debug)]
struct Checked {
    /// The files as they were when last read (successfully or not).
    stamp: Option<Stamp>,
    /// Set after a failed read: when to read the same files again.
    retry_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

type Stamp = (FileStamp, FileStamp);

fn file_stamp(path: &Path) -> std::io::Result<FileStamp> {
    // Follows symbolic links: a Kubernetes secret volume swaps the link's target.
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(FileStamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

impl ReloadingCert {
    /// Reads the certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1); an error names the file and what is wrong with it.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let stamp = file_stamp(cert_path)
            .and_then(|cert| Ok((cert, file_stamp(key_path)?)))
            .ok();
        let key = read_pair(cert_path, key_path, &provider)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
            checked: Mutex::new(Checked {
                stamp,
                retry_at: None,
            }),
        }))
    }

    /// The rustls settings of a server presenting this certificate (HTTP/1.1 only).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| format!("TLS settings: {error}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The certificate chain presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again if they changed since they were last read.
    pub fn reload_if_changed(&self) {
        // One handshake checks at a time; the others present the current certificate.
        let Ok(mut checked) = self.checked.try_lock() else {
            return;
        };
        let Ok(stamp) =
            file_stamp(&self.cert_path).and_then(|cert| Ok((cert, file_stamp(&self.key_path)?)))
        else {
            // A file missing for a moment (being replaced): keep the current certificate.
            return;
        };
        let retry_due = checked.retry_at.is_some_and(|at| Instant::now() >= at);
        if checked.stamp == Some(stamp) && !retry_due {
            return;
        }
        checked.stamp = Some(stamp);
        match read_pair(&self.cert_path, &self.key_path, &self.provider) {
            Ok(key) => {
                checked.retry_at = None;
                match self.current.write() {
                    Ok(mut current) => *current = Arc::new(key),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(key),
                }
                tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                if checked.retry_at.is_none() {
                    tracing::warn!(%error, "TLS certificate files changed but do not load; keeping the previous certificate");
                }
                checked.retry_at = Some(Instant::now() + RETRY_FAILED_AFTER);
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_changed();
        Some(self.current())
    }
}

fn read_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("TLS certificate {}: {error}", cert_path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "TLS certificate {}: no PEM certificate in it",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| format!("TLS key {}: {error}", key_path.display()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| {
        format!(
            "TLS key {} does not go with certificate {}: {error}",
            key_path.display(),
            cert_path.display()
        )
    })
}
