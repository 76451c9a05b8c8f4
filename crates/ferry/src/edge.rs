//! The flags of Ferry's HTTP edge: HTTPS and the connection cap of the control plane
//! (`ferry up`, `ferry server`), and how a data plane reaches it (`ferry dataplane`).

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use ferry_control::ServeOptions;
use ferry_control::server::DEFAULT_MAX_CONNECTIONS;
use ferry_control::tls::ReloadingCert;

#[derive(Args)]
pub struct ServerEdgeArgs {
    /// Serve HTTPS only, with this certificate chain (PEM, leaf first); read again whenever
    /// the file changes, so a renewed certificate needs no restart. Needs --tls-key.
    #[arg(long, env = "FERRY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "FERRY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Connections open at once; further ones wait to be accepted.
    #[arg(long, env = "FERRY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

impl ServerEdgeArgs {
    /// How to serve: HTTPS when both files are given (they must load), else plain HTTP.
    pub fn serve_options(&self) -> anyhow::Result<ServeOptions> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                Some(ReloadingCert::load(cert, key).map_err(anyhow::Error::msg)?)
            }
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together (FERRY_TLS_CERT, FERRY_TLS_KEY)"),
        };
        Ok(ServeOptions {
            tls,
            max_connections: self.max_connections.max(1),
        })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The `ferry dataplane` flags with which `ferry up`'s own data plane reaches this
    /// control plane, bound at `address`: over loopback, and over HTTPS trusting the
    /// certificate file itself (a chain with its issuer, or a self-signed certificate)
    /// unless `FERRY_CA_CERT` names another CA, which the child inherits. A certificate
    /// names the public host rather than an address: with a `--public-url`, the child uses
    /// its host name and dials the loopback address for it.
    pub fn default_dataplane_args(
        &self,
        address: SocketAddr,
        public_url: Option<&str>,
    ) -> Vec<OsString> {
        let ip = match address.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let dial = SocketAddr::new(ip, address.port());
        let Some(cert) = &self.tls_cert else {
            return vec![
                "--control-plane-url".into(),
                format!("http://{dial}").into(),
            ];
        };
        let public_host = public_url
            .and_then(|url| url::Url::parse(url).ok())
            .and_then(|url| url.host_str().map(str::to_owned))
            .filter(|host| !host.starts_with('[') && host.parse::<IpAddr>().is_err());
        let mut args: Vec<OsString> = vec!["--control-plane-url".into()];
        match public_host {
            Some(host) => {
                args.push(format!("https://{host}:{}", address.port()).into());
                args.extend(["--connect-to".into(), dial.to_string().into()]);
            }
            None => args.push(format!("https://{dial}").into()),
        }
        if std::env::var_os("FERRY_CA_CERT").is_none() {
            args.extend(["--ca-cert".into(), cert.into()]);
        }
        args
    }
}

#[derive(Args)]
pub struct ConnectionArgs {
    /// A file holding the client secret (a mounted secret), so it is not on the command line.
    #[arg(long, conflicts_with = "client_secret")]
    pub client_secret_file: Option<PathBuf>,
    /// A PEM file of CA certificates (or the server's certificate) to trust besides the
    /// system's roots (`SSL_CERT_FILE`, when set, replaces those).
    #[arg(long, env = "FERRY_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Dial this address whatever the control plane URL's host resolves to (its certificate
    /// is still checked against that host), as curl's `--connect-to`.
    #[arg(long, env = "FERRY_CONNECT_TO")]
    pub connect_to: Option<SocketAddr>,
}

/// A client secret kept in a file: its content without the surrounding whitespace.
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the client secret file {}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        bail!("the client secret file {} is empty", path.display());
    }
    Ok(secret.to_owned())
}
