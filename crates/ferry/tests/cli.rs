//! The `ferry` command line as a user meets it: bad arguments, first start, restart.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use ferry_testkit::{Api, FerryOptions, FerryProcess, StoreKind, token};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");

#[test]
fn bad_arguments_get_one_line_and_a_nonzero_exit() {
    for args in [
        vec!["up", "--listen", "not-an-address"],
        vec!["up", "--no-such-flag"],
        vec!["launch"],
        vec!["server"],
    ] {
        let output = Command::new(BINARY).args(&args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("ferry: "), "{stderr}");
    }
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8(help.stdout).unwrap().contains("up"));
}

#[test]
fn unusable_databases_fail_with_one_line() {
    let directory = tempfile::tempdir().unwrap();
    for url in [
        "mysql://root@127.0.0.1/x",
        "postgres://nobody@127.0.0.1:1/none",
    ] {
        let output = Command::new(BINARY)
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                url,
                "--data-dir",
            ])
            .arg(directory.path())
            .env("FERRY_LOG", "off")
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("ferry: error: opening the control-plane store"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn restarting_keeps_everything_and_prints_no_new_secret() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().join("data");
    let options = || FerryOptions {
        data_dir: Some(data_dir.clone()),
        ..FerryOptions::new(StoreKind::Sqlite)
    };
    let mut first = FerryProcess::start(BINARY.as_ref(), options()).await;
    assert!(
        first
            .stdout_lines
            .iter()
            .any(|line| line.starts_with("admin client secret:"))
    );
    let (client_id, client_secret) = first.admin_credentials();
    let credentials = std::fs::metadata(data_dir.join("credentials.json")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(credentials.permissions().mode() & 0o777, 0o600);
    }
    let api = first.admin_api().await;
    let before = api.get("/api/public/v1/workspaces").await.body;
    first.kill();

    let second = FerryProcess::start(BINARY.as_ref(), options()).await;
    assert!(
        !second
            .stdout_lines
            .iter()
            .any(|line| line.contains("secret")),
        "no secret is printed twice: {:?}",
        second.stdout_lines
    );
    let token = token(&second.base_url, &client_id, &client_secret).await;
    let api = Api::new(&second.base_url, Some(token));
    let after = api.get("/api/public/v1/workspaces").await.body;
    assert_eq!(before["data"], after["data"]);
    let organizations = api.get("/api/public/v1/organizations").await.body;
    assert_eq!(organizations["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        organizations["data"][0]["organizationId"],
        "00000000-0000-0000-0000-000000000000"
    );
    let dataplanes = api.get("/api/public/v1/dataplanes").await.body;
    assert_eq!(dataplanes["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_credentials_can_come_from_the_environment() {
    let ferry = FerryProcess::start(
        BINARY.as_ref(),
        FerryOptions::new(StoreKind::Sqlite)
            .env("FERRY_ADMIN_CLIENT_ID", "ops-admin")
            .env("FERRY_ADMIN_CLIENT_SECRET", "a-long-secret-from-the-vault"),
    )
    .await;
    assert!(
        !ferry
            .stdout_lines
            .iter()
            .any(|line| line.contains("secret"))
    );
    let token = token(&ferry.base_url, "ops-admin", "a-long-secret-from-the-vault").await;
    let reply = Api::new(&ferry.base_url, Some(token))
        .get("/api/public/v1/dataplanes")
        .await;
    assert_eq!(reply.status, 200);
}
