//! Proving a backup intact before a restore or a repair changes anything.
//!
//! A backup's manifest is written only after the backup passed `quick_check` (it says so in
//! [`Manifest::checked`]), and it records the BLAKE3 checksum of the whole file. A file whose
//! size and checksum match such a manifest is, byte for byte, the file that was checked: that
//! is the proof, and reading the file once to hash it is all it costs. The full
//! `integrity_check` — which reads every page and every index entry, seconds per gigabyte of
//! CPU — runs when it is asked for (`RestoreRequest::full_check`, `peerlite restore
//! --full-check`), and always when the manifest does not say the backup was checked (written
//! by an older peerlite, or by hand): then the checksum proves nothing about soundness.

use std::path::Path;

use super::manifest::{Manifest, checksum_file};
use super::naming;
use crate::error::{Error, Result};
use crate::store::connection;

/// How thoroughly a backup is proven before it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    /// Size and checksum against a manifest that says the backup was checked; the full
    /// check only when it does not.
    Checksum,
    /// Size, checksum and `integrity_check` whatever the manifest says.
    Full,
}

/// What a verification found and did.
#[derive(Debug)]
pub(crate) struct Verified {
    pub manifest: Manifest,
    /// `integrity_check` ran (asked for, or the manifest did not say the backup was checked).
    pub full_check: bool,
}

/// Checks a backup: manifest, size, checksum, and `integrity_check` (with the key) when
/// `depth` or the manifest calls for it.
pub(crate) fn verify(
    path: &Path,
    key: Option<&crate::EncryptionKey>,
    depth: Depth,
) -> Result<Verified> {
    let invalid = |reason: String| Error::BackupInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let manifest_path = naming::manifest_path(path);
    if !manifest_path.is_file() {
        return Err(invalid(
            "there is no manifest beside it (not a peerlite backup, or not finished)".into(),
        ));
    }
    let manifest = Manifest::read(&manifest_path)?;
    if std::fs::metadata(path).map(|m| m.len()).ok() != Some(manifest.file_size) {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        return Err(invalid(format!(
            "{size} bytes, the manifest says {} (truncated or overwritten)",
            manifest.file_size
        )));
    }
    let full_check = depth == Depth::Full || manifest.checked.is_none();
    let (summed, checked) = if full_check {
        // The checksum and integrity_check read the file independently: side by side.
        std::thread::scope(|scope| {
            let summing = scope.spawn(|| checksum_file(path));
            let checked = integrity_check(path, key);
            let summed = summing.join().unwrap_or_else(|_| {
                Err(Error::io(
                    "hashing",
                    path,
                    std::io::Error::other("the hashing thread panicked"),
                ))
            });
            (summed, checked)
        })
    } else {
        (checksum_file(path), Ok(()))
    };
    let (checksum, size) = summed?;
    if size != manifest.file_size {
        return Err(invalid(format!(
            "{size} bytes, the manifest says {} (truncated or overwritten)",
            manifest.file_size
        )));
    }
    if checksum != manifest.checksum {
        return Err(invalid(
            "its checksum does not match the manifest (the file changed after the backup)".into(),
        ));
    }
    checked?;
    if !full_check {
        // The checksum proves the bytes; opening the file with the key (one page read)
        // proves the key, as the full check would have.
        open_checked(path, key)?;
    }
    Ok(Verified {
        manifest,
        full_check,
    })
}

/// Opens a backup file with its key: a wrong key is 14800020, anything else that keeps it
/// from opening makes the backup invalid.
fn open_checked(path: &Path, key: Option<&crate::EncryptionKey>) -> Result<rusqlite::Connection> {
    connection::open_file(path, key).map_err(|e| match e {
        e @ Error::WrongKey { .. } => e,
        e => Error::BackupInvalid {
            path: path.to_path_buf(),
            reason: format!("cannot open it: {e}"),
        },
    })
}

/// `PRAGMA integrity_check` of a backup file, with its key.
fn integrity_check(path: &Path, key: Option<&crate::EncryptionKey>) -> Result<()> {
    let invalid = |reason: String| Error::BackupInvalid {
        path: path.to_path_buf(),
        reason,
    };
    let conn = open_checked(path, key)?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check(20)")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| invalid(format!("integrity_check failed to run: {e}")))?;
    if problems != ["ok"] {
        let flat: Vec<String> = problems
            .iter()
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        return Err(invalid(format!("integrity_check: {}", flat.join("; "))));
    }
    Ok(())
}
