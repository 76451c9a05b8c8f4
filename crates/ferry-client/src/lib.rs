//! The control plane as a data plane sees it: a token from its client credentials (refreshed
//! 30 s before expiry and after any 401), and one typed method per data-plane endpoint.
//! HTTPS is verified with rustls against the system's roots and an optional CA file (`tls`).

mod tls;

use std::time::Duration;

use ferry_api::{
    AttemptConfig, ClaimKind, ClaimRequest, ClaimResponse, DataplaneHeartbeatRequest,
    DataplaneIdentityResponse, DataplaneTokenResponse, FinishReport, ProgressReport, StateCommit,
    TaskResult,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

pub use tls::{ClientOptions, describe as describe_transport_error};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The control plane answered with an error status; `detail` is its problem's detail.
    #[error("control plane answered {status}: {detail}")]
    Status { status: u16, detail: String },
    /// Not reached; the message says why in one line (DNS, refused, TLS, certificate).
    #[error("control plane unreachable at {}", tls::describe(.0))]
    Transport(#[source] reqwest::Error),
    /// The client's own settings are unusable (a CA file that does not read).
    #[error("{0}")]
    Settings(String),
    #[error("unexpected reply from the control plane: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The attempt is no longer this data plane's to report on.
    pub fn is_fenced(&self) -> bool {
        matches!(self.status(), Some(403 | 404 | 409))
    }
}

/// Renew this long before the token expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// Longest one log part may take to send; the next try resends it.
const LOG_APPEND_TIMEOUT: Duration = Duration::from_secs(20);

struct CachedToken {
    token: String,
    refresh_at: Instant,
}

pub struct ControlPlaneClient {
    base_url: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    token: Mutex<Option<CachedToken>>,
    /// Tokens fetched so far (the data plane's metrics report it).
    tokens_fetched: std::sync::atomic::AtomicU64,
}

impl ControlPlaneClient {
    pub fn new(base_url: &str, client_id: &str, client_secret: &str) -> Result<Self, ClientError> {
        Self::with_options(
            base_url,
            client_id,
            client_secret,
            &ClientOptions::default(),
        )
    }

    /// A client that also trusts `options.ca_cert` (and connects to `options.connect_to`).
    pub fn with_options(
        base_url: &str,
        client_id: &str,
        client_secret: &str,
        options: &ClientOptions,
    ) -> Result<Self, ClientError> {
        let tls = tls::client_config(options.ca_cert.as_deref()).map_err(ClientError::Settings)?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(Duration::from_secs(10))
            // Long enough for a long-polling claim.
            .timeout(Duration::from_secs(60))
            // Below the control plane's 10 s idle limit, so that a pooled connection is never
            // reused just as the server closes it.
            .pool_idle_timeout(Duration::from_secs(5));
        if let Some(address) = options.connect_to {
            let url = reqwest::Url::parse(base_url)
                .map_err(|error| ClientError::Settings(format!("URL {base_url}: {error}")))?;
            // Only a name is resolved; an IP address in the URL is dialled as it is.
            if let Some(host) = url.host_str()
                && !host.starts_with('[')
                && host.parse::<std::net::IpAddr>().is_err()
            {
                builder = builder.resolve(host, address);
            }
        }
        let http = builder.build().map_err(ClientError::Transport)?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            http,
            token: Mutex::new(None),
            tokens_fetched: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// How many tokens this client has fetched.
    pub fn tokens_fetched(&self) -> u64 {
        self.tokens_fetched
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn error_of(response: reqwest::Response) -> ClientError {
        let status = response.status().as_u16();
        let detail = match response.json::<serde_json::Value>().await {
            Ok(body) => body["detail"].as_str().unwrap_or("").to_owned(),
            Err(_) => String::new(),
        };
        ClientError::Status { status, detail }
    }

    async fn fetch_token(&self) -> Result<CachedToken, ClientError> {
        let response = self
            .http
            .post(format!("{}/api/v1/dataplanes/token", self.base_url))
            .json(&serde_json::json!({
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }))
            .send()
            .await
            .map_err(ClientError::Transport)?;
        if !response.status().is_success() {
            return Err(Self::error_of(response).await);
        }
        let body: DataplaneTokenResponse = response
            .json()
            .await
            .map_err(|error| ClientError::Decode(error.to_string()))?;
        self.tokens_fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let lifetime = Duration::from_secs(u64::try_from(body.expires_in).unwrap_or(0));
        Ok(CachedToken {
            token: body.access_token,
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        })
    }

    async fn token(&self, force_refresh: bool) -> Result<String, ClientError> {
        let mut cached = self.token.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|token| !force_refresh && Instant::now() < token.refresh_at);
        if !fresh {
            *cached = Some(self.fetch_token().await?);
        }
        cached
            .as_ref()
            .map(|token| token.token.clone())
            .ok_or_else(|| ClientError::Decode("no token".to_owned()))
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base_url))
                .bearer_auth(token)
                .header("X-Airbyte-Version", env!("CARGO_PKG_VERSION"));
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(ClientError::Transport)?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                // Revoked or expired early: one fresh token, then give up.
                refreshed = true;
                continue;
            }
            if !response.status().is_success() {
                return Err(Self::error_of(response).await);
            }
            return response
                .json()
                .await
                .map_err(|error| ClientError::Decode(error.to_string()));
        }
    }

    pub async fn initialize(&self) -> Result<DataplaneIdentityResponse, ClientError> {
        let body = DataplaneHeartbeatRequest {
            client_id: self.client_id.clone(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            ..Default::default()
        };
        self.call(Method::POST, "/api/v1/dataplanes/initialize", Some(&body))
            .await
    }

    pub async fn heartbeat(
        &self,
        request: &DataplaneHeartbeatRequest,
    ) -> Result<DataplaneIdentityResponse, ClientError> {
        self.call(Method::POST, "/api/v1/dataplanes/heartbeat", Some(request))
            .await
    }

    /// Waits up to `wait` for a job or a connector task of this data plane's region (only
    /// one of them, when `only` says so).
    pub async fn claim(
        &self,
        wait: Duration,
        only: Option<ClaimKind>,
    ) -> Result<ClaimResponse, ClientError> {
        let request = ClaimRequest {
            wait_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)),
            job_id: None,
            only,
        };
        self.call(Method::POST, "/api/v1/jobs/claim", Some(&request))
            .await
    }

    pub async fn task_result(&self, task_id: Uuid, result: &TaskResult) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &format!("/api/v1/tasks/{task_id}/result"),
                Some(result),
            )
            .await?;
        Ok(())
    }

    fn attempt_path(job_id: i64, attempt_id: Uuid, what: &str) -> String {
        format!("/api/v1/jobs/{job_id}/attempts/{attempt_id}/{what}")
    }

    pub async fn attempt_config(
        &self,
        job_id: i64,
        attempt_id: Uuid,
    ) -> Result<AttemptConfig, ClientError> {
        self.call::<(), _>(
            Method::GET,
            &Self::attempt_path(job_id, attempt_id, "config"),
            None,
        )
        .await
    }

    pub async fn report_progress(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        report: &ProgressReport,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &Self::attempt_path(job_id, attempt_id, "progress"),
                Some(report),
            )
            .await?;
        Ok(())
    }

    pub async fn commit_state(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        commit: &StateCommit,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &Self::attempt_path(job_id, attempt_id, "state"),
                Some(commit),
            )
            .await?;
        Ok(())
    }

    /// Appends the attempt's log from byte `offset` on (text); answers how many bytes of it
    /// the control plane holds, from where the next part starts.
    pub async fn append_log(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        offset: u64,
        text: &[u8],
    ) -> Result<u64, ClientError> {
        let url = format!(
            "{}{}?offset={offset}",
            self.base_url,
            Self::attempt_path(job_id, attempt_id, "logs")
        );
        let mut refreshed = false;
        loop {
            let token = self.token(refreshed).await?;
            let response = self
                .http
                .post(&url)
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .timeout(LOG_APPEND_TIMEOUT)
                .body(text.to_vec())
                .send()
                .await
                .map_err(ClientError::Transport)?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            if !response.status().is_success() {
                return Err(Self::error_of(response).await);
            }
            let reply: ferry_api::LogAppendResponse = response
                .json()
                .await
                .map_err(|error| ClientError::Decode(error.to_string()))?;
            return Ok(reply.received);
        }
    }

    pub async fn finish(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        report: &FinishReport,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &Self::attempt_path(job_id, attempt_id, "finish"),
                Some(report),
            )
            .await?;
        Ok(())
    }

    /// Hands the attempt back (its data plane is draining): the job returns to its region's
    /// lane at once with what was committed, for another plane of the region to resume.
    pub async fn hand_back(
        &self,
        job_id: i64,
        attempt_id: Uuid,
        counts: &ProgressReport,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &Self::attempt_path(job_id, attempt_id, "hand-back"),
                Some(counts),
            )
            .await?;
        Ok(())
    }
}
