//! The web UI's edges over plain HTTP (no browser needed): sign-in and its cookies, CSRF
//! refusals, no open redirect, sessions ended by a new password, the password API's
//! refusals, the 404 page beside the API's problem bodies, and the embedded assets.

#![allow(clippy::unwrap_used)]

use ferry_testkit::{FerryOptions, FerryUp, StoreKind, text, token};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the `Set-Cookie` named `name`, and the whole header.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|header| {
            let pair = header.split(';').next().unwrap_or_default().to_owned();
            (pair, header.to_owned())
        })
}

struct SignIn {
    status: StatusCode,
    location: Option<String>,
    session: Option<(String, String)>,
}

async fn sign_in(ferry: &FerryUp, email: &str, password: &str, next: &str) -> SignIn {
    let http = no_redirects();
    let form = http
        .get(format!("{}/sign-in?next={next}", ferry.base_url()))
        .send()
        .await
        .unwrap();
    let (token_cookie, _) = set_cookie(&form, "ferry_sign_in").unwrap();
    let token = token_cookie.split_once('=').unwrap().1.to_owned();
    let response = http
        .post(format!("{}/sign-in", ferry.base_url()))
        .header("Cookie", token_cookie)
        .form(&[
            ("csrf", token.as_str()),
            ("email", email),
            ("password", password),
            ("next", next),
        ])
        .send()
        .await
        .unwrap();
    SignIn {
        status: response.status(),
        location: response
            .headers()
            .get(LOCATION)
            .map(|value| value.to_str().unwrap().to_owned()),
        session: set_cookie(&response, "ferry_session"),
    }
}

async fn get_with(ferry: &FerryUp, path: &str, cookie: &str) -> reqwest::Response {
    no_redirects()
        .get(format!("{}{path}", ferry.base_url()))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_sessions_and_csrf() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let credentials = ferry.process.credentials();
    let email = credentials["admin"]["email"].as_str().unwrap().to_owned();
    let password = credentials["admin"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    // Printed once at first start, beside the API credentials.
    assert!(
        ferry
            .process
            .stdout_lines
            .iter()
            .any(|line| line.contains("admin sign-in") && line.contains(&password))
    );

    // No session: the UI sends the browser to sign in, and back.
    let home = no_redirects().get(ferry.base_url()).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::SEE_OTHER);
    assert_eq!(home.headers()[LOCATION], "/sign-in?next=%2F");

    // The sign-in form's own token: without its cookie, no sign-in.
    let forged = no_redirects()
        .post(format!("{}/sign-in", ferry.base_url()))
        .form(&[
            ("csrf", "guess"),
            ("email", email.as_str()),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&forged, "ferry_session").is_none());

    let wrong = sign_in(&ferry, &email, "not the password at all", "/").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.session.is_none());
    let unknown = sign_in(&ferry, "nobody@example.com", &password, "/").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);

    // Signed in: an HttpOnly, SameSite=Lax cookie (not Secure over plain HTTP), and never
    // a redirect off the site.
    let signed_in = sign_in(&ferry, &email.to_uppercase(), &password, "//evil.example/").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location.as_deref(), Some("/"));
    let (session, header) = signed_in.session.unwrap();
    assert!(
        header.contains("HttpOnly") && header.contains("SameSite=Lax"),
        "{header}"
    );
    assert!(!header.contains("Secure"), "{header}");
    let page = get_with(&ferry, "/organization", &session).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Organization settings"));
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();

    // A form without the session's CSRF token changes nothing.
    let http = no_redirects();
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{}{path}", ferry.base_url()))
            .header("Cookie", &session)
            .form(&form)
            .send()
    };
    let no_token = post(
        "/organization/regions",
        vec![("name", "x-region".to_owned())],
    )
    .await
    .unwrap();
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong_token = post(
        "/organization/regions",
        vec![
            ("csrf", "0".repeat(csrf.len())),
            ("name", "x-region".to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    let regions = ferry
        .admin
        .get("/api/public/v1/regions?organizationId=00000000-0000-0000-0000-000000000000")
        .await;
    assert!(!regions.body.to_string().contains("x-region"));
    // A bad name is refused in words, next to its field.
    let blank = post(
        "/organization/regions",
        vec![("csrf", csrf.clone()), ("name", "  ".to_owned())],
    )
    .await
    .unwrap();
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
    assert!(blank.text().await.unwrap().contains("must not be empty"));
    // Sign-out needs the token too; then the cookie no longer works.
    let stay = post("/sign-out", vec![]).await.unwrap();
    assert_eq!(stay.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get_with(&ferry, "/organization", &session).await.status(),
        StatusCode::OK
    );
    let out = post("/sign-out", vec![("csrf", csrf)]).await.unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = get_with(&ferry, "/organization", &session).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(
        after.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/sign-in")
    );
}

#[tokio::test]
async fn passwords_are_set_by_instance_admins_only_and_end_sessions() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let user = ferry
        .admin
        .create(
            "/api/public/v1/users",
            json!({"name": "Editor", "email": "editor@example.com"}),
        )
        .await;
    let user_id = text(&user["id"]);
    let path = format!("/api/public/v1/users/{user_id}/password");
    let put = |api: &ferry_testkit::Api, path: String, body| {
        let api = api.clone();
        async move { api.send(reqwest::Method::PUT, &path, body).await }
    };
    put(&ferry.admin, path.clone(), json!({"password": "short"}))
        .await
        .assert_problem(400)
        .assert_names_field("password");
    put(&ferry.admin, path.clone(), json!({}))
        .await
        .assert_problem(400)
        .assert_names_field("password");
    put(
        &ferry.admin,
        "/api/public/v1/users/00000000-0000-0000-0000-00000000abcd/password".to_owned(),
        json!({"password": "long enough password"}),
    )
    .await
    .assert_problem(404);
    // Without a password, nobody signs in as the user.
    assert_eq!(
        sign_in(&ferry, "editor@example.com", "long enough password", "/")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let set = put(
        &ferry.admin,
        path.clone(),
        json!({"password": "long enough password"}),
    )
    .await;
    assert_eq!(set.status, 204, "{}", set.body);
    let signed_in = sign_in(&ferry, "editor@example.com", "long enough password", "/").await;
    let (session, _) = signed_in.session.unwrap();

    // A user who is not an instance admin cannot set passwords, not even their own.
    ferry
        .admin
        .create(
            "/api/public/v1/permissions",
            json!({"permissionType": "workspace_editor", "userId": user_id, "workspaceId": ferry.workspace}),
        )
        .await;
    let application = ferry
        .admin
        .create(
            "/api/public/v1/applications",
            json!({"name": "editor-app", "userId": user_id}),
        )
        .await;
    let editor_token = token(
        ferry.base_url(),
        &text(&application["clientId"]),
        &text(&application["clientSecret"]),
    )
    .await;
    let editor = ferry_testkit::Api::new(ferry.base_url(), Some(editor_token));
    put(
        &editor,
        path.clone(),
        json!({"password": "the editor's own choice"}),
    )
    .await
    .assert_problem(403);
    assert_eq!(
        get_with(&ferry, "/organization", &session).await.status(),
        StatusCode::OK
    );

    // A new password ends the user's sessions.
    put(
        &ferry.admin,
        path,
        json!({"password": "another long password"}),
    )
    .await;
    let after = get_with(&ferry, "/organization", &session).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        sign_in(&ferry, "editor@example.com", "long enough password", "/")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_404_page_the_assets_and_the_api_beside_them() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let http = no_redirects();
    let page = http
        .get(format!("{}/no/such/page", ferry.base_url()))
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Pages are private, unframed, and run only this site's scripts.
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
    assert!(page.text().await.unwrap().contains("Page not found"));
    // API clients still get problem bodies, under /api and elsewhere.
    ferry
        .anonymous()
        .get("/no/such/page")
        .await
        .assert_problem(404);
    ferry
        .admin
        .get("/api/public/v1/no-such-thing")
        .await
        .assert_problem(404);
    for (path, kind) in [
        ("/favicon.svg", "image/svg+xml"),
        ("/favicon.ico", "image/svg+xml"),
        ("/assets/ferry.css", "text/css"),
        ("/assets/htmx-2.0.11.min.js", "text/javascript"),
        ("/assets/ui.js", "text/javascript"),
    ] {
        let asset = http
            .get(format!("{}{path}", ferry.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert!(
            asset.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
        assert!(!asset.bytes().await.unwrap().is_empty());
    }
    // A page's live part whose session is gone sends the whole page to sign in.
    let refresh = http
        .get(format!("{}/jobs/7/summary?attempts=0", ferry.base_url()))
        .header("HX-Request", "true")
        .header("HX-Current-URL", format!("{}/jobs/7", ferry.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::OK);
    assert_eq!(
        refresh.headers()["hx-redirect"],
        "/sign-in?next=%2Fjobs%2F7"
    );
    // Nothing the pages load comes from elsewhere.
    let sign_in_page = http
        .get(format!("{}/sign-in", ferry.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!sign_in_page.contains("http://") && !sign_in_page.contains("https://"));
}

/// Runs `openssl` with these arguments (split at white space) in `dir`.
fn openssl(dir: &std::path::Path, args: &str) {
    let output = std::process::Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("openssl could not run: {error}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn over_https_the_session_cookies_are_secure() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
         -out ca.pem -days 2 -subj /CN=Ferry-UI-test-CA \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
    );
    std::fs::write(
        dir.path().join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir.path(),
        "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
         -out server.csr -subj /CN=ferry-ui",
    );
    openssl(
        dir.path(),
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile server.ext -out server.pem",
    );
    let files = ferry_testkit::TlsFiles {
        cert: dir.path().join("server.pem"),
        key: dir.path().join("server.key"),
        ca: dir.path().join("ca.pem"),
    };
    let ferry = FerryUp::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .control_plane_only()
            .tls(files),
    )
    .await;
    assert!(ferry.base_url().starts_with("https://"));
    let pem = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http
        .get(format!("{}/sign-in", ferry.base_url()))
        .send()
        .await
        .unwrap();
    let (token_cookie, header) = set_cookie(&form, "ferry_sign_in").unwrap();
    assert!(header.ends_with("; Secure"), "{header}");
    let credentials = ferry.process.credentials();
    let token = token_cookie.split_once('=').unwrap().1.to_owned();
    let signed_in = http
        .post(format!("{}/sign-in", ferry.base_url()))
        .header("Cookie", token_cookie)
        .form(&[
            ("csrf", token.as_str()),
            ("email", credentials["admin"]["email"].as_str().unwrap()),
            (
                "password",
                credentials["admin"]["password"].as_str().unwrap(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let (_, session) = set_cookie(&signed_in, "ferry_session").unwrap();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.ends_with("; Secure"),
        "{session}"
    );
}

#[tokio::test]
async fn hostile_addresses_and_forms_get_pages_in_words_never_a_500() {
    let ferry = FerryUp::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let credentials = ferry.process.credentials();
    let email = credentials["admin"]["email"].as_str().unwrap();
    let password = credentials["admin"]["password"].as_str().unwrap();
    // A next page outside the site, or not plain ASCII, is never followed.
    for next in [
        "%2F%09%2Fevil.example",
        "%2Fcaf%C3%A9",
        "https%3A%2F%2Fevil.example",
    ] {
        let signed_in = sign_in(&ferry, email, password, next).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(signed_in.location.as_deref(), Some("/"), "{next}");
    }
    let (session, _) = sign_in(&ferry, email, password, "/").await.session.unwrap();
    for (path, status) in [
        ("/workspaces/%0A", 400),
        ("/workspaces/not-a-uuid/settings", 400),
        (
            "/workspaces/00000000-0000-0000-0000-00000000beef/settings",
            404,
        ),
        (
            "/workspaces/00000000-0000-0000-0000-00000000beef/sources/new?type=postgres",
            404,
        ),
        ("/jobs/abc", 400),
        ("/jobs/99999999", 404),
        ("/jobs/1/attempts/x/log", 404),
        ("/connections/%FF", 400),
        ("/sources/nope", 400),
        ("/destinations/00000000-0000-0000-0000-00000000beef", 404),
        ("/organization/regions/zz/dataplanes", 400),
    ] {
        let response = get_with(&ferry, path, &session).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        let kind = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        // A path that is not UTF-8 is refused by the router itself, in plain words.
        let expected = if path.contains("%FF") {
            "text/plain"
        } else {
            "text/html"
        };
        assert!(kind.starts_with(expected), "{path}: {kind}");
        assert!(!response.text().await.unwrap().trim().is_empty(), "{path}");
    }
    let workspace = text(&ferry.workspace);
    let new_source = get_with(
        &ferry,
        &format!("/workspaces/{workspace}/sources/new?type=no-such-connector"),
        &session,
    )
    .await;
    assert_eq!(new_source.status(), StatusCode::BAD_REQUEST);
    assert!(
        new_source
            .text()
            .await
            .unwrap()
            .contains("no-such-connector")
    );
    // A form far past the body limit is refused, not read whole.
    let huge = no_redirects()
        .post(format!("{}/organization/regions", ferry.base_url()))
        .header("Cookie", &session)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("name={}", "x".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_admin_email_is_configurable_and_its_password_made_once() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let options = || {
        let mut options =
            FerryOptions::new(StoreKind::Sqlite).env("FERRY_ADMIN_EMAIL", "ops@example.org");
        options.data_dir = Some(data_dir.clone());
        options
    };
    let mut first = FerryUp::start(BINARY.as_ref(), options()).await;
    let credentials = first.process.credentials();
    assert_eq!(credentials["admin"]["email"], "ops@example.org");
    let password = credentials["admin"]["password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(password.len() >= 20, "{password}");
    // Beside the API credentials, which still work.
    assert!(credentials["admin"]["clientId"].is_string());
    first.process.kill();
    drop(first);

    let again = FerryUp::start(BINARY.as_ref(), options()).await;
    assert!(
        !again
            .process
            .stdout_lines
            .iter()
            .any(|line| line.contains("admin sign-in")),
        "{:?}",
        again.process.stdout_lines
    );
    assert_eq!(again.process.credentials()["admin"]["password"], password);
    let signed_in = sign_in(&again, "ops@example.org", &password, "/").await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert!(signed_in.session.is_some());
}

#[test]
fn a_bad_admin_email_stops_the_first_start_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BINARY)
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path().join("data"))
        .env("FERRY_ADMIN_EMAIL", "not an email")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("ferry: error"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(error.contains("FERRY_ADMIN_EMAIL"), "{error}");
}
