//! The one directory the local-file connectors (`file`, `local-json`, `csv`) may read and
//! write: Airbyte's `/local` mount. A path is given relative to it (`out/people.csv`) or as
//! Airbyte writes it, under `/local` (`/local/out/people.csv`); anything else is refused.
//!
//! Two checks, in two places. [`relative`] is lexical (no `..`, nothing absolute outside
//! `/local`): the control plane runs it with the configuration's other checks, since it
//! cannot see the data plane's disk. [`resolve`] runs where the files are, when a
//! connector is built: it canonicalizes the part of the path that exists against the root
//! the data plane set at start ([`set`]), so that a symlink inside the root leading out of it
//! is refused too. A process that set no root (the control plane, `ferry connector` without
//! `FERRY_LOCAL_ROOT`) reads and writes no local file at all.

use std::path::{Component, Path, PathBuf};
use std::sync::RwLock;

use crate::config::ConfigError;

/// Where Airbyte mounts the local root in its connectors' containers.
pub const MOUNT: &str = "local";

/// The environment variable that names the root (`ferry dataplane --local-root`).
pub const ENV: &str = "FERRY_LOCAL_ROOT";

/// The root of this process, canonical; set once by the data plane at start.
static ROOT: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Makes `root` (created if missing) this process's local root and returns it canonical.
/// Refused when it holds, or is, one of `protected` (the plane's own data dir, storage,
/// credentials): those must stay unreachable through a connector.
pub fn set(root: &Path, protected: &[&Path]) -> Result<PathBuf, String> {
    let canonical = prepare(root, protected)?;
    let mut slot = ROOT
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    *slot = Some(canonical.clone());
    Ok(canonical)
}

/// `root` made if missing and canonical, checked as [`set`] checks it, but not set: for a
/// process that starts the data plane (`ferry up`) and knows what it must not reach.
pub fn prepare(root: &Path, protected: &[&Path]) -> Result<PathBuf, String> {
    std::fs::create_dir_all(root)
        .map_err(|error| format!("creating the local root {}: {error}", root.display()))?;
    let canonical = root
        .canonicalize()
        .map_err(|error| format!("resolving the local root {}: {error}", root.display()))?;
    for path in protected {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if path.starts_with(&canonical) {
            return Err(format!(
                "the local root {} would hold {}, which connectors must not reach: choose a directory of its own",
                canonical.display(),
                path.display()
            ));
        }
    }
    Ok(canonical)
}

/// This process's local root, if one was set.
pub fn get() -> Option<PathBuf> {
    ROOT.read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone()
}

fn outside(field: &str, given: &str) -> ConfigError {
    ConfigError::new(
        field,
        format!(
            "'{given}' is outside the local root: give a path relative to it (data/file.csv) or under /{MOUNT}/ (/{MOUNT}/data/file.csv)"
        ),
    )
}

/// The part of `given` below the local root, checked lexically: relative, or under
/// `/local` (a `file://` prefix is dropped); no `..` anywhere. Empty for the root itself.
pub fn relative(field: &str, given: &str) -> Result<PathBuf, ConfigError> {
    let text = given.strip_prefix("file://").unwrap_or(given);
    let path = Path::new(text);
    let mut components = path.components();
    if path.has_root()
        && (components.next() != Some(Component::RootDir)
            || components.next() != Some(Component::Normal(MOUNT.as_ref())))
    {
        return Err(outside(field, given));
    }
    let mut below = PathBuf::new();
    for component in components {
        match component {
            Component::Normal(part) => below.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(ConfigError::new(
                    field,
                    format!("'{given}' must not contain '..': paths stay under the local root"),
                ));
            }
            Component::RootDir | Component::Prefix(_) => return Err(outside(field, given)),
        }
    }
    Ok(below)
}

/// `given` on this machine: under this process's root ([`set`]), every symlink of the part
/// that exists resolved, and still under the root.
pub fn resolve(field: &str, given: &str) -> Result<PathBuf, ConfigError> {
    let root = get().ok_or_else(|| {
        ConfigError::new(
            field,
            format!(
                "local files are disabled here: no local root is set (ferry dataplane --local-root, or {ENV})"
            ),
        )
    })?;
    resolve_under(&root, field, given)
}

/// [`resolve`] under `root`, which must be canonical.
pub fn resolve_under(root: &Path, field: &str, given: &str) -> Result<PathBuf, ConfigError> {
    let below = relative(field, given)?;
    let parts: Vec<_> = below.components().collect();
    // The longest prefix that exists, canonicalized; the rest does not exist yet (a
    // destination's directory to make).
    for existing in (0..=parts.len()).rev() {
        let prefix: PathBuf = root.join(parts[..existing].iter().collect::<PathBuf>());
        if std::fs::symlink_metadata(&prefix).is_err() {
            continue;
        }
        let canonical = prefix.canonicalize().map_err(|error| {
            ConfigError::new(field, format!("'{given}' cannot be resolved: {error}"))
        })?;
        if !canonical.starts_with(root) {
            return Err(ConfigError::new(
                field,
                format!("'{given}' leads outside the local root (through a symlink)"),
            ));
        }
        let rest: PathBuf = parts[existing..].iter().collect();
        return Ok(if rest.as_os_str().is_empty() {
            canonical
        } else {
            canonical.join(rest)
        });
    }
    Err(ConfigError::new(
        field,
        format!("the local root {} does not exist", root.display()),
    ))
}

/// Checks a file about to be opened under a resolved directory: if it exists (a symlink
/// included), it must resolve under this process's root, so that no symlink planted beside
/// the data sends a write or a read elsewhere.
pub fn check_file(field: &str, path: &Path) -> Result<(), ConfigError> {
    let Some(root) = get() else {
        return Err(ConfigError::new(field, "no local root is set"));
    };
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match path.canonicalize() {
        Ok(canonical) if canonical.starts_with(&root) => Ok(()),
        _ => Err(ConfigError::new(
            field,
            format!(
                "{} leads outside the local root (through a symlink)",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_are_relative_or_under_local_and_never_climb() {
        for (given, below) in [
            ("data/x.csv", "data/x.csv"),
            ("./x.csv", "x.csv"),
            ("/local/x.csv", "x.csv"),
            ("file:///local/a/b.jsonl", "a/b.jsonl"),
            ("file://x.csv", "x.csv"),
            ("/local", ""),
            ("//local/x", "x"),
        ] {
            assert_eq!(relative("url", given).unwrap(), Path::new(below), "{given}");
        }
        for given in [
            "/etc/passwd",
            "../x",
            "/local/../x",
            "a/../../x",
            "a/..",
            "/localx/y",
            "/tmp/local/x",
            "file:///etc/passwd",
        ] {
            let error = relative("url", given).unwrap_err();
            assert_eq!(error.field, "url", "{given}");
        }
    }

    #[test]
    fn symlinks_leading_out_of_the_root_are_refused() {
        let directory = tempfile_dir();
        let root = directory.join("local");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(directory.join("secrets.key"), "k").unwrap();
        std::fs::write(root.join("data/x.csv"), "a\n1\n").unwrap();
        let root = root.canonicalize().unwrap();
        std::os::unix::fs::symlink(directory.join("secrets.key"), root.join("key.csv")).unwrap();
        std::os::unix::fs::symlink(&directory, root.join("up")).unwrap();
        std::os::unix::fs::symlink(root.join("data"), root.join("inside")).unwrap();
        std::os::unix::fs::symlink(directory.join("nowhere"), root.join("dangling")).unwrap();
        assert_eq!(
            resolve_under(&root, "url", "/local/data/x.csv").unwrap(),
            root.join("data/x.csv")
        );
        assert_eq!(
            resolve_under(&root, "url", "inside/x.csv").unwrap(),
            root.join("data/x.csv")
        );
        // Not there yet: the existing part is resolved, the rest appended.
        assert_eq!(
            resolve_under(&root, "destination_path", "data/new/deeper").unwrap(),
            root.join("data/new/deeper")
        );
        // Out and back in is in.
        assert_eq!(
            resolve_under(&root, "url", "up/local/data/x.csv").unwrap(),
            root.join("data/x.csv")
        );
        for given in ["key.csv", "up/secrets.key", "up", "dangling", "dangling/x"] {
            let error = resolve_under(&root, "url", given).unwrap_err();
            assert_eq!(error.field, "url");
        }
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn a_root_holding_the_planes_own_files_is_refused() {
        let directory = tempfile_dir();
        let data = directory.join("data");
        std::fs::create_dir_all(&data).unwrap();
        assert!(prepare(&directory, &[&data]).is_err());
        assert!(prepare(&data, &[&data]).is_err());
        let local = prepare(&data.join("local"), &[&data]).unwrap();
        assert!(local.ends_with("data/local") && local.is_dir());
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// A fresh directory (the crate's `tempfile` is a runtime dependency only).
    fn tempfile_dir() -> PathBuf {
        let directory = std::env::temp_dir().join(format!(
            "ferry-local-root-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&directory).unwrap();
        directory.canonicalize().unwrap()
    }
}
