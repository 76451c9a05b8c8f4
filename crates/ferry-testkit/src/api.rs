//! The public and data-plane APIs as a test speaks them: tokens, replies, a JSON client.

use std::time::Duration;

use serde_json::Value;

use crate::wait_for;

/// The string `value` holds (an id, a secret, a token); panics if it holds none.
pub fn text(value: &Value) -> String {
    match value.as_str() {
        Some(text) => text.to_owned(),
        None => panic!("expected a string, got {value}"),
    }
}

/// Exchanges client credentials for an access token through the public API.
pub async fn token(base_url: &str, client_id: &str, client_secret: &str) -> String {
    token_with(&reqwest::Client::new(), base_url, client_id, client_secret).await
}

/// [`token`] through this client (one trusting a test CA, say).
pub async fn token_with(
    client: &reqwest::Client,
    base_url: &str,
    client_id: &str,
    client_secret: &str,
) -> String {
    let response = client
        .post(format!("{base_url}/api/public/v1/applications/token"))
        .json(&serde_json::json!({
            "client_id": client_id,
            "client_secret": client_secret,
            "grant_type": "client_credentials",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "token request failed");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A status and a JSON body (or `Null` when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: Option<String>,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Self {
            status,
            body,
            content_type,
        }
    }

    /// Asserts an Airbyte problem body with this status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        assert_eq!(self.body["status"], status, "problem body: {}", self.body);
        assert!(self.body["type"].is_string(), "problem body: {}", self.body);
        assert!(
            self.body["title"].is_string(),
            "problem body: {}",
            self.body
        );
        assert!(
            self.body["detail"].is_string(),
            "problem body: {}",
            self.body
        );
        self
    }

    /// Asserts the problem names `field` among its field errors.
    pub fn assert_names_field(&self, field: &str) -> &Self {
        let named = self.body["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|error| error["field"] == field));
        assert!(named, "expected field {field} to be named in {}", self.body);
        self
    }
}

/// A JSON API client with a bearer token.
#[derive(Clone)]
pub struct Api {
    pub base_url: String,
    pub token: Option<String>,
    client: reqwest::Client,
}

impl Api {
    pub fn new(base_url: &str, token: Option<String>) -> Self {
        Self::with_client(base_url, token, reqwest::Client::new())
    }

    /// A client sending through `client` (one trusting a test CA, say).
    pub fn with_client(base_url: &str, token: Option<String>, client: reqwest::Client) -> Self {
        Self {
            base_url: base_url.to_owned(),
            token,
            client,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send_empty(reqwest::Method::GET, path).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send_empty(reqwest::Method::DELETE, path).await
    }

    /// Sends a request without a body.
    async fn send_empty(&self, method: reqwest::Method, path: &str) -> Reply {
        Reply::from(self.request(method, path).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// POSTs what must succeed (200); the reply's body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, 200, "POST {path}: {}", reply.body);
        reply.body
    }

    /// A source and a destination in `workspace` (from their `configuration`s) and a
    /// connection between them, with `connection`'s extra fields; the connection's id.
    pub async fn connect(
        &self,
        workspace: &Value,
        source: Value,
        destination: Value,
        connection: Value,
    ) -> Value {
        let source = self
            .create(
                "/api/public/v1/sources",
                serde_json::json!({"name": "source", "workspaceId": workspace, "configuration": source}),
            )
            .await;
        let destination = self
            .create(
                "/api/public/v1/destinations",
                serde_json::json!({"name": "destination", "workspaceId": workspace, "configuration": destination}),
            )
            .await;
        let mut request = serde_json::json!({"sourceId": source["sourceId"], "destinationId": destination["destinationId"]});
        for (key, value) in connection.as_object().into_iter().flatten() {
            request[key] = value.clone();
        }
        self.create("/api/public/v1/connections", request).await["connectionId"].clone()
    }

    /// Runs `check` of the source with this id (on a data plane of its region); the reply.
    pub async fn check_source(&self, source_id: &Value) -> Reply {
        self.post(
            &format!("/api/public/v1/sources/{}/check", text(source_id)),
            Value::Object(serde_json::Map::new()),
        )
        .await
    }

    /// The state the control plane keeps for `stream` of the connection (its entry of the
    /// connection's `state`), which must be there.
    pub async fn stream_state(&self, connection_id: &str, stream: &str) -> Value {
        let connection = self
            .get(&format!("/api/public/v1/connections/{connection_id}"))
            .await
            .body;
        connection["state"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|state| state["stream"] == stream)
            .unwrap_or_else(|| panic!("no state for {stream}: {connection}"))
            .clone()
    }

    /// Starts a job (`sync` or `reset`) of the connection; its id.
    pub async fn start_job(&self, connection: &Value, job_type: &str) -> i64 {
        let job = self
            .create(
                "/api/public/v1/jobs",
                serde_json::json!({"connectionId": connection, "jobType": job_type}),
            )
            .await;
        job["jobId"].as_i64().unwrap()
    }

    /// The job, which must be found.
    pub async fn job(&self, job_id: i64) -> Value {
        let reply = self.get(&format!("/api/public/v1/jobs/{job_id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body
    }

    /// The log of the first attempt of `job` (a job as the API shows it), which must be
    /// served.
    pub async fn first_attempt_log(&self, job: &Value) -> String {
        self.attempt_log(job, 1).await
    }

    /// The log of attempt `number` (from 1) of `job`.
    pub async fn attempt_log(&self, job: &Value, number: u32) -> String {
        let log = self
            .get(&format!(
                "/api/public/v1/jobs/{}/attempts/{number}/logs",
                job["jobId"]
            ))
            .await;
        assert_eq!(log.status, 200, "{}", log.body);
        text(&log.body)
    }

    /// The job once its status is `status`; fails at once if it fails without `status`
    /// being `failed`.
    pub async fn wait_for_job_status(&self, job_id: i64, status: &str, timeout: Duration) -> Value {
        wait_for(&format!("job {job_id} to be {status}"), timeout, || async {
            let job = self.job(job_id).await;
            assert!(
                job["status"] != "failed" || status == "failed",
                "job {job_id} failed: {job}"
            );
            (job["status"] == status).then_some(job)
        })
        .await
    }

    /// The job once it has ended (succeeded, failed or cancelled).
    pub async fn finished_job(&self, job_id: i64, timeout: Duration) -> Value {
        wait_for(&format!("job {job_id} to end"), timeout, || async {
            let reply = self.get(&format!("/api/public/v1/jobs/{job_id}")).await;
            // A token that expired meanwhile would otherwise wait out the whole timeout.
            assert!(
                !matches!(reply.status, 401 | 403),
                "job {job_id}: the token was refused: {}",
                reply.body
            );
            let job = reply.body;
            matches!(
                job["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
            .then_some(job)
        })
        .await
    }

    /// Starts a sync of `connection` and waits for it, which must succeed; the job.
    pub async fn sync(&self, connection: &Value, timeout: Duration) -> Value {
        self.sync_ending(connection, "succeeded", timeout).await
    }

    /// Starts a sync of `connection` and waits for it, which must fail; the job.
    pub async fn failed_sync(&self, connection: &Value, timeout: Duration) -> Value {
        self.sync_ending(connection, "failed", timeout).await
    }

    async fn sync_ending(&self, connection: &Value, status: &str, timeout: Duration) -> Value {
        let job_id = self.start_job(connection, "sync").await;
        let job = self.finished_job(job_id, timeout).await;
        assert_eq!(job["status"], status, "{job}");
        job
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, body).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Reply {
        Reply::from(self.request(method, path).json(&body).send().await.unwrap()).await
    }

    /// Sends raw bytes as the body, with the given content type.
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        Reply::from(
            self.request(method, path)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}
