//! Moving a damaged database aside. Nothing is ever deleted: the files go into
//! `quarantine/<file>-<UTC time>/` beside the database, where they can be inspected or
//! recovered by other tools.

use std::path::{Path, PathBuf};

use crate::backup::{naming, sync_dir};
use crate::error::{Error, Result};

/// Where the damaged files went.
#[derive(Debug)]
pub(crate) struct Quarantined {
    /// The quarantine folder.
    pub dir: PathBuf,
    /// The database file inside it (absent when the database file itself was missing).
    pub db: Option<PathBuf>,
}

/// Moves the database, its WAL files and its corruption flag into a new quarantine folder.
pub(crate) fn move_aside(db: &Path) -> Result<Quarantined> {
    let parent = db.parent().unwrap_or(Path::new(""));
    let file = db
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("database");
    let dir = parent
        .join("quarantine")
        .join(naming::stamped(&format!("{file}-"), naming::now_ms()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating quarantine folder", &dir, e))?;
    let mut moved_db = None;
    for suffix in ["", "-wal", "-shm", ".corrupt"] {
        let from = PathBuf::from(format!("{}{suffix}", db.display()));
        if !from.exists() {
            continue;
        }
        let to = dir.join(format!("{file}{suffix}"));
        std::fs::rename(&from, &to)
            .map_err(|e| Error::io("moving a damaged file into quarantine", &from, e))?;
        if suffix.is_empty() {
            moved_db = Some(to);
        }
    }
    sync_dir(&dir)?;
    sync_dir(parent)?;
    Ok(Quarantined { dir, db: moved_db })
}
