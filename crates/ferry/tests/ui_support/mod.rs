//! A real browser for the UI tests: Debian's Chromium, headless, driven over WebDriver by
//! `fantoccini` through `chromedriver`. WebDriver rather than CDP: it is the W3C protocol
//! made for tests (find, type, click, screenshot), chromedriver ships with Debian's
//! Chromium, and fantoccini is a maintained client of it; CDP would mean hand-writing a
//! client of Chrome's internal protocol. chromedriver listens on loopback (plain HTTP), so
//! the client needs no TLS backend.
//!
//! Chromium runs with a fresh profile and every background service off: on a machine
//! without outside network it otherwise waits on them and hangs.

#![allow(clippy::unwrap_used, dead_code)]

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub const DESKTOP: (u32, u32) = (1280, 800);
pub const PHONE: (u32, u32) = (390, 844);

fn tool(variable: &str, default: &str) -> String {
    let path = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run `. scripts/setup/chromium.sh` (installs chromium and chromium-driver)"
    );
    path
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    pub base_url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A headless Chromium at `base_url`, its screenshots under
    /// `<target>/tmp/ui-screenshots/<name>/`.
    pub async fn start(base_url: &str, name: &str) -> Self {
        let chromium = tool("FERRY_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("FERRY_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            // Its own process group: Chromium and its helpers end with it (see `Drop`).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver at {url} gave no session within 30 s: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("ui-screenshots")
            .join(name);
        std::fs::create_dir_all(&shots).unwrap();
        eprintln!("screenshots: {}", shots.display());
        let browser = Self {
            client,
            driver,
            _profile: profile,
            shots,
            base_url: base_url.to_owned(),
        };
        browser.resize(DESKTOP).await;
        browser
    }

    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base_url))
            .await
            .unwrap();
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|error| panic!("no element {selector} on {}: {error}", self.base_url))
    }

    pub async fn all(&self, selector: &str) -> Vec<fantoccini::elements::Element> {
        self.client.find_all(Locator::Css(selector)).await.unwrap()
    }

    pub async fn exists(&self, selector: &str) -> bool {
        !self.all(selector).await.is_empty()
    }

    /// Clears the input named `name` (or matching `#id`) and types `text` into it.
    pub async fn fill(&self, name: &str, text: &str) {
        let selector = if name.starts_with('#') {
            name.to_owned()
        } else {
            format!("[name='{name}']")
        };
        let input = self.css(&selector).await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    pub async fn select(&self, selector: &str, label: &str) {
        self.css(selector)
            .await
            .select_by_label(label)
            .await
            .unwrap_or_else(|error| panic!("{selector} has no option '{label}': {error}"));
    }

    /// Clicks the button whose text is `text` and waits (at most 90 s: a Test waits for
    /// its check) for the page it submits to.
    pub async fn press(&self, text: &str) {
        let button = self
            .client
            .find(Locator::XPath(&format!(
                "//button[normalize-space(.)='{text}']"
            )))
            .await
            .unwrap_or_else(|error| panic!("no button '{text}': {error}"));
        self.submit_with(button).await;
    }

    /// Clicks `element` and waits for the next page: until the current one is gone.
    pub async fn submit_with(&self, element: fantoccini::elements::Element) {
        let page = self.css("html").await;
        let clicked = element.click().await;
        // A form that asks first (data-confirm): the user says yes.
        let accepted = self.client.accept_alert().await;
        if let Err(error) = clicked {
            assert!(accepted.is_ok(), "the click failed: {error}");
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        while page.tag_name().await.is_ok() {
            if Instant::now() > deadline {
                let url = self.client.current_url().await.unwrap();
                panic!("no new page within 90 s at {url}: {}", self.body().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_until_loaded().await;
    }

    pub async fn wait_until_loaded(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self
                .client
                .execute("return document.readyState", Vec::new())
                .await
                .ok();
            if state.as_ref().and_then(Value::as_str) == Some("complete") {
                return;
            }
            assert!(Instant::now() < deadline, "page not loaded within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn has_button(&self, text: &str) -> bool {
        !self
            .client
            .find_all(Locator::XPath(&format!(
                "//button[normalize-space(.)='{text}']"
            )))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn text(&self, selector: &str) -> String {
        self.css(selector).await.text().await.unwrap()
    }

    /// The page's visible text.
    pub async fn body(&self) -> String {
        self.text("body").await
    }

    /// Waits (at most `timeout`) until the text of `selector` contains `wanted`.
    pub async fn wait_for_text(&self, selector: &str, wanted: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(selector)).await
                && let Ok(text) = element.text().await
                && text.contains(wanted)
            {
                return text;
            }
            if Instant::now() > deadline {
                let body = self.body().await;
                panic!(
                    "{selector} did not show '{wanted}' within {timeout:?}; the page says:\n{body}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes a screenshot of the whole page at both widths (`<name>-1280.png`,
    /// `<name>-390.png`): the window is made as tall as the page (at most 6000 px).
    pub async fn screenshots(&self, name: &str) {
        for (width, height) in [DESKTOP, PHONE] {
            self.resize((width, height)).await;
            // Let the layout settle at the new width.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let full = self
                .client
                .execute("return document.documentElement.scrollHeight", Vec::new())
                .await
                .ok()
                .and_then(|value| value.as_u64())
                .map_or(height, |page| {
                    u32::try_from(page).unwrap_or(height).clamp(height, 6000)
                });
            self.resize((width, full)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(self.shots.join(format!("{name}-{width}.png")), png).unwrap();
        }
        self.resize(DESKTOP).await;
    }

    /// Signs in through the form.
    pub async fn sign_in(&self, email: &str, password: &str) {
        self.open("/").await;
        assert_eq!(self.path().await, "/sign-in");
        self.fill("email", email).await;
        self.fill("password", password).await;
        self.press("Sign in").await;
    }

    pub async fn sign_out(&self) {
        self.press("Sign out").await;
        assert_eq!(self.path().await, "/sign-in");
    }

    /// The session cookie (HttpOnly: scripts cannot read it, WebDriver can).
    pub async fn session_cookie(&self) -> String {
        self.client
            .get_named_cookie("ferry_session")
            .await
            .unwrap()
            .value()
            .to_owned()
    }

    /// Ends the browser session (Chromium quits), then chromedriver.
    pub async fn stop(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// chromedriver and every Chromium process it started (one process group), even when a
    /// test failed half-way.
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.driver.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.driver.wait();
    }
}
