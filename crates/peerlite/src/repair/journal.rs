//! The repair journal, `NAME.repair` beside the database: written (and synced) before the
//! first damaged file is touched, updated as the repair passes its steps, removed when it is
//! done. While it exists a repair is pending: every open refuses the store with 14800011
//! naming `peerlite repair`, and an open with `allow_rebuild` finishes the repair from where
//! it stopped. It lives outside the database, so nothing that happens to the database file
//! (or its absence) can hide it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SalvageReport;
use crate::backup::naming::with_suffix;
use crate::backup::{sync_dir, write_synced_file};
use crate::error::{Error, Result};

/// The state of a pending repair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Journal {
    /// When the repair started (RFC 3339).
    pub started: String,
    /// The quarantine folder of this repair, by name: it is `quarantine/<name>` beside the
    /// database (see [`Journal::dir`]), wherever the process that resumes it runs from.
    pub quarantine: String,
    /// Damaged files are hard-linked into quarantine (false: moved, where links are refused).
    pub links: bool,
    /// The damaged store was opened with a key.
    pub encrypted: bool,
    /// Set once the replacement is in place: the backup it came from (`None`: empty).
    pub installed: Option<Option<String>>,
    /// Set once salvage ran (or failed).
    pub salvage: Option<SalvageReport>,
    /// The backup this repair puts in place, when one was chosen (a restore over a damaged
    /// store); `None`: the newest verified backup.
    #[serde(default)]
    pub chosen: Option<std::path::PathBuf>,
}

impl Journal {
    /// The quarantine folder of this repair.
    pub fn dir(&self, db: &Path) -> PathBuf {
        super::quarantine::root(db).join(&self.quarantine)
    }
}

/// `NAME.repair` beside the database.
pub(crate) fn path(db: &Path) -> PathBuf {
    with_suffix(db, ".repair")
}

fn parent(db: &Path) -> &Path {
    db.parent().unwrap_or(Path::new(""))
}

/// The pending repair of `db`: `None` when there is none, `Some(Err(why))` when its journal
/// exists but cannot be read (a repair is pending all the same).
pub(crate) fn read(db: &Path) -> Option<std::result::Result<Journal, String>> {
    match std::fs::read(path(db)) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

/// Whether a repair of `db` is pending.
pub(crate) fn pending(db: &Path) -> bool {
    path(db).exists()
}

/// Writes the journal whole: a temporary file, synced, renamed over the old one, and the
/// directory synced, so a crash leaves the old journal or the new one.
pub(crate) fn write(db: &Path, journal: &Journal) -> Result<()> {
    let target = path(db);
    let tmp = with_suffix(&target, ".tmp");
    let bytes = serde_json::to_vec_pretty(journal).map_err(|e| {
        Error::io(
            "encoding the repair journal",
            &target,
            std::io::Error::other(e),
        )
    })?;
    write_synced_file(&tmp, &bytes)?;
    std::fs::rename(&tmp, &target)
        .map_err(|e| Error::io("writing the repair journal", &target, e))?;
    sync_dir(parent(db))
}

/// Ends the repair.
pub(crate) fn remove(db: &Path) -> Result<()> {
    let target = path(db);
    match std::fs::remove_file(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("removing the repair journal", target, e)),
    }
    sync_dir(parent(db))
}

/// The error every open without `allow_rebuild` gets while a repair is pending.
pub(crate) fn pending_error(db: &Path, kind: crate::StoreKind) -> Error {
    let since = match read(db) {
        Some(Ok(j)) => format!("started {}", j.started),
        _ => "its journal is unreadable".into(),
    };
    Error::Corrupted {
        path: db.to_path_buf(),
        detail: format!(
            "a repair of this corrupted store is pending ({since}); run `peerlite repair` to finish it"
        ),
        sqlite: None,
        kind,
    }
}
