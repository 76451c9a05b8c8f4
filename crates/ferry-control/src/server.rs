//! The control plane's accept loop: HTTP/1.1, plain or over TLS, on one listener, with the
//! limits of its HTTP edge.
//!
//! * A TLS handshake must finish within [`TLS_HANDSHAKE_TIMEOUT`].
//! * A request's headers must arrive within [`HEADER_READ_TIMEOUT`] of the first byte the
//!   server waits for; the same limit closes a keep-alive connection idle that long (hyper
//!   starts the clock whenever it waits for a request head).
//! * A request body that stalls for [`BODY_READ_TIMEOUT`] fails its request (a 400) and the
//!   connection is closed.
//! * At most `max_connections` connections are open at once. When they are, the loop stops
//!   accepting: newcomers wait in the kernel's listen backlog (and see latency, not a reset
//!   that many clients would not retry) until a connection ends, which the timeouts above
//!   bound for an idle or stalled one. Closing them instead would turn a burst of data planes
//!   and SDK calls into errors.
//!
//! On shutdown, idle connections close at once and requests under way get
//! [`SHUTDOWN_GRACE`] to finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tower_http::normalize_path::NormalizePath;
use tower_http::timeout::TimeoutBody;

use crate::tls::ReloadingCert;

/// Time a client has to complete a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's headers (and how long a keep-alive connection may
/// stay idle).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause while a request body is read.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections open at once unless configured otherwise; under the usual limit of 1,024
/// open files, with room for the database, logs and connector pipes.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long requests under way may run on after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How the control plane serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// HTTPS with this certificate; plain HTTP when `None`.
    pub tls: Option<Arc<ReloadingCert>>,
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

type App = NormalizePath<Router>;

/// Accepts connections on `listener` and serves `app` on them until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    app: App,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = match &options.tls {
        Some(cert) => Some(TlsAcceptor::from(
            cert.server_config().map_err(std::io::Error::other)?,
        )),
        None => None,
    };
    let max_connections = options.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (stop_sender, stop) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(
            stream,
            remote,
            app.clone(),
            acceptor.clone(),
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop_sender.send(true);
    // Every connection holds a permit until it ends.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still under way after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}

async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::*;
    // The peer gave up before it was accepted: nothing to wait for.
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    // Out of file descriptors, typically: wait for some to close rather than spin.
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Resolves once shutdown was asked for.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    app: App,
    acceptor: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        return serve_http(TokioIo::new(stream), (remote, false), app, stop).await;
    };
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%remote, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        },
        () = stopped(&mut stop) => return,
    };
    serve_http(TokioIo::new(stream), (remote, true), app, stop).await;
}

/// Marks a request that came over TLS (the web UI's cookies are then `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls(pub bool);

async fn serve_http<I>(
    io: TokioIo<I>,
    (remote, tls): (SocketAddr, bool),
    app: App,
    mut stop: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(|body| Body::new(TimeoutBody::new(BODY_READ_TIMEOUT, body)));
        request.extensions_mut().insert(ConnectInfo(remote));
        request.extensions_mut().insert(ServedOverTls(tls));
        let app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.oneshot(request)
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%remote, %error, "connection ended with an error");
    }
}
