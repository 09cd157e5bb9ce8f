//! `NAME.reset` beside the database: a client reset under way. It lives outside every
//! transaction, so a reset that failed or was killed is known to the next one, which counts
//! the attempts and gives up after [`MAX_ATTEMPTS`] instead of looping.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Resets of one store that may fail in a row before the next is refused.
pub const MAX_ATTEMPTS: u32 = 3;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The peer the store is re-seeded from.
    pub peer: String,
    /// Resets that failed in a row (a killed one does not count).
    pub attempts: u32,
    /// The verified backup taken before this attempt.
    pub backup: Option<PathBuf>,
}

fn path(db: &Path) -> PathBuf {
    let mut os = db.as_os_str().to_owned();
    os.push(".reset");
    PathBuf::from(os)
}

/// The pending reset, when there is one. A damaged file (empty, cut short, overwritten: a
/// crash on a file system without ordered writes) still records a reset that was begun and
/// not finished, but no count of failures — a reset is crash-safe, so the store is either
/// as it was before or as the reset left it, and the next one may run: it counts as none
/// failed, of unknown peer and backup (read for nothing else).
pub(crate) fn read(db: &Path) -> Option<Record> {
    let file = path(db);
    let bytes = std::fs::read(&file).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(?file, %e, "the client reset record is damaged: taken as an interrupted reset, no failed attempt known");
        Record {
            peer: String::new(),
            attempts: 0,
            backup: None,
        }
    }))
}

fn write(db: &Path, record: &Record) -> Result<()> {
    let file = path(db);
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::io("writing the reset record", &file, std::io::Error::other(e)))?;
    crate::backup::write_file_atomically(&file, &json)
}

/// Records a new attempt against `peer`; refused once [`MAX_ATTEMPTS`] attempts failed in a
/// row. A killed attempt is no failure (it did not get to fail): the next one resumes.
pub(super) fn begin(db: &Path, peer: &str) -> Result<Record> {
    let failed = read(db).map_or(0, |r| r.attempts);
    if failed >= MAX_ATTEMPTS {
        return Err(super::too_many(db, failed));
    }
    let record = Record {
        peer: peer.to_owned(),
        attempts: failed,
        backup: None,
    };
    write(db, &record)?;
    Ok(record)
}

/// An attempt failed (it ended without finishing).
pub(super) fn failed(db: &Path) {
    if let Some(mut record) = read(db) {
        record.attempts = record.attempts.saturating_add(1);
        if let Err(e) = write(db, &record) {
            tracing::warn!(?db, %e, "could not count a failed client reset");
        }
    }
}

/// Names the attempt's backup in the record.
pub(super) fn note_backup(db: &Path, record: &Record, backup: &Path) -> Result<()> {
    write(
        db,
        &Record {
            backup: Some(backup.to_path_buf()),
            ..record.clone()
        },
    )
}

/// The reset finished (or was abandoned).
pub(super) fn clear(db: &Path) -> Result<()> {
    match std::fs::remove_file(path(db)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing the reset record", path(db), e)),
    }
}

/// `NAME.reset.lock`, held by a running reset: see [`crate::store::reset_lock`].
pub(crate) use crate::store::reset_lock::RunningReset;
