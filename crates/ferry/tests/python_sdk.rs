//! Airbyte's official Python SDK (`airbyte-api` from PyPI, in a venv this test makes) drives
//! a real `ferry up`: status codes, shapes and token handling as its generated client
//! expects them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_testkit::{FerryOptions, FerryProcess, StoreKind};

const BINARY: &str = env!("CARGO_BIN_EXE_ferry");
const SDK: &str = "airbyte-api==1.0.1";

/// A venv with the SDK, kept under the target dir between runs.
fn sdk_python() -> PathBuf {
    let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
    ferry_testkit::python_venv(parent, "venv-airbyte-api-1.0.1", SDK, "airbyte_api")
        .join("bin/python")
}

#[tokio::test]
async fn airbytes_python_sdk_works_unchanged() {
    let python = sdk_python();
    let ferry = FerryProcess::start(BINARY.as_ref(), FerryOptions::new(StoreKind::Sqlite)).await;
    let (client_id, client_secret) = ferry.admin_credentials();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/sdk_walkthrough.py");
    let base_url = ferry.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([&base_url, &client_id, &client_secret])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK walkthrough failed\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("sdk walkthrough: ok"), "{stdout}");
}
