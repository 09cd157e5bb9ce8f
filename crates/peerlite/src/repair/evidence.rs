//! Whether a database path holds a store, holds nothing, or holds the traces of a store that
//! is no longer there — decided before anything opens the path, because opening is what
//! destroys the evidence: SQLite takes a missing or 0-byte file for a new, empty database
//! (and deletes the WAL of a 0-byte one), and peerlite would then write a new identity into it.
//!
//! A store leaves traces beside its file: its WAL and shared-memory files (`-wal`, `-shm`),
//! the clock file of a store that syncs (`.clock`), a corruption flag
//! (`.corrupt`), a repair journal (`.repair`), its backups (`backup/<file>/`) and the
//! quarantine folders of earlier repairs (`quarantine/<file>-<time>/`). When the file is
//! missing or empty and any of these is there, the path is a **lost store**: every open
//! refuses it with 14800011 (nothing is created, nothing deleted), and only a repair
//! (`allow_rebuild`, `peerlite repair`) or a restore acts on it — salvaging what the WAL still
//! holds and putting the newest verified backup back.
//!
//! A 0-byte file with no trace at all is not a database either, but nothing shows a store was
//! ever there (`touch`, `mktemp` make such files): an open that creates stores (writable, not
//! for recovery) makes a new store in it, as SQLite would; an open that only looks (read-only,
//! for recovery) refuses it, and a repair treats it as damage (it starts empty).
//!
//! One case is left to the application: a *missing* file beside nothing but its clock file,
//! backups or quarantine folders — no WAL, shared-memory file, flag or journal, nothing a crash
//! or a damage leaves — is how a database deliberately deleted to be made again looks (an app
//! reset, a device re-created), and the clock file exists to carry the clock and the epoch
//! across exactly that: the library's creating open makes the new store there (it resumes past
//! the clock file's ceiling, as a new epoch; its backups stay restorable). A 0-byte file is
//! never that. Opens that only look refuse it, and so does every command of the `peerlite`
//! binary (see [`refuse_lost_store`]).
//!
//! A live store is never mistaken for a lost one: SQLite writes page 1 into the database file
//! itself (through a rollback journal) when a new database switches to WAL, before any WAL or
//! shared-memory file exists, so a store in use is never a 0-byte file beside them.

use std::path::{Path, PathBuf};

use crate::StoreKind;
use crate::backup::naming::{self, with_suffix};
use crate::error::{Error, Result};

/// What is at a database path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AtPath {
    /// A file with content: SQLite decides whether it is a database.
    File,
    /// Nothing, and no trace of a store.
    Nothing,
    /// A 0-byte file, and no other trace of a store.
    Empty,
    /// No file or a 0-byte file, beside these traces of a store. `deleted`: the file is
    /// missing and the only traces are ones a deliberately deleted database leaves (its clock
    /// file, backups, quarantine folders) — nothing of a crash or a damage (see the module).
    Lost {
        empty_file: bool,
        deleted: bool,
        traces: Vec<String>,
    },
}

/// Looks at `db` and the files beside it (`backup_dir`: where its backups go).
pub(crate) fn at_path(db: &Path, backup_dir: &Path) -> AtPath {
    let empty_file = match std::fs::metadata(db) {
        Ok(meta) if meta.len() > 0 || !meta.is_file() => return AtPath::File,
        Ok(_) => true,
        Err(_) => false,
    };
    let traces = traces(db, backup_dir);
    let crashed = std::fs::metadata(with_suffix(db, "-wal")).is_ok_and(|m| m.len() > 0)
        || [".corrupt", ".repair", "-shm"]
            .iter()
            .any(|suffix| with_suffix(db, suffix).exists());
    match (empty_file, traces.is_empty()) {
        (_, false) => AtPath::Lost {
            empty_file,
            deleted: !empty_file && !crashed,
            traces,
        },
        (true, true) => AtPath::Empty,
        (false, true) => AtPath::Nothing,
    }
}

/// The traces of a store beside `db`, described for a message.
fn traces(db: &Path, backup_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let name = |p: &Path| p.display().to_string();
    // Not `-journal`: peerlite's stores run in WAL mode, and a rollback journal beside a
    // 0-byte file is the transient one SQLite writes while a new database switches to WAL.
    let wal = with_suffix(db, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        found.push(format!("its -wal file {} holds data", name(&wal)));
    }
    for (suffix, what) in [
        ("-shm", "its shared-memory file"),
        (".clock", "its clock file"),
        (".corrupt", "its corruption flag"),
        (".repair", "its repair journal"),
    ] {
        let side = with_suffix(db, suffix);
        if side.exists() {
            found.push(format!("{what} {} is there", name(&side)));
        }
    }
    let backups = std::fs::read_dir(backup_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !naming::is_tmp(&e.path()) && e.path().is_file())
                .count()
        })
        .unwrap_or(0);
    if backups > 0 {
        found.push(format!(
            "its backup folder {} holds {backups} file(s)",
            name(backup_dir)
        ));
    }
    let quarantined = quarantine_folders(db);
    if !quarantined.is_empty() {
        found.push(format!(
            "{} quarantine folder(s) of it are in {}",
            quarantined.len(),
            name(&super::quarantine::root(db))
        ));
    }
    found
}

/// The quarantine folders of `db`: `quarantine/<file>-<YYYYMMDDTHHMMSS.mmmZ>[-n]`.
pub(crate) fn quarantine_folders(db: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}-", super::quarantine::file_name(db));
    let Ok(entries) = std::fs::read_dir(super::quarantine::root(db)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(is_stamp)
        })
        .map(|e| e.path())
        .collect()
}

/// `YYYYMMDDTHHMMSS.mmmZ`, optionally followed by `-n`.
fn is_stamp(s: &str) -> bool {
    let (stamp, n) = s.split_once('-').unwrap_or((s, "1"));
    let b = stamp.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'.',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && !n.is_empty()
        && n.bytes().all(|c| c.is_ascii_digit())
}

/// The error for a path whose store is gone but whose traces are there.
pub(crate) fn lost_error(db: &Path, empty_file: bool, traces: &[String], kind: StoreKind) -> Error {
    let what = if empty_file {
        "the database file is empty (0 bytes)"
    } else {
        "the database file is missing"
    };
    Error::Corrupted {
        path: db.to_path_buf(),
        detail: format!(
            "{what}, but a store was here: {}; nothing was created or deleted (`peerlite \
             repair` salvages what is left and puts the newest verified backup back)",
            traces.join("; ")
        ),
        sqlite: None,
        kind,
    }
}

/// The error for a 0-byte file opened to be looked at, not created.
pub(crate) fn empty_error(db: &Path, kind: StoreKind) -> Error {
    Error::Corrupted {
        path: db.to_path_buf(),
        detail: "the file is empty (0 bytes): it holds no database; `peerlite repair` starts \
                 it empty, `peerlite restore` puts a backup in it"
            .into(),
        sqlite: None,
        kind,
    }
}

/// Whether the store at `db` (backups in `backup_dir`) exists to be opened by a command that
/// must not create one: `Ok` for a file with content (or a pending repair, which the open
/// reports), 14800010 when nothing and no trace is there, 14800011 for a lost store or a
/// 0-byte file.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("a.db");
/// assert_eq!(peerlite::repair::require_store(&db, None).unwrap_err().code(), 14800010);
/// std::fs::write(&db, b"")?;
/// assert_eq!(peerlite::repair::require_store(&db, None).unwrap_err().code(), 14800011);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As above.
pub fn require_store(db: &Path, backup_dir: Option<&Path>) -> Result<()> {
    if super::repair_pending(db) {
        return Ok(());
    }
    let default_dir = naming::default_dir(&crate::StoreConfig::new(db));
    let backup_dir = backup_dir.unwrap_or(&default_dir);
    match at_path(db, backup_dir) {
        AtPath::File => Ok(()),
        AtPath::Nothing => Err(Error::InvalidPath {
            path: db.to_path_buf(),
            reason: "no database there".into(),
        }),
        AtPath::Empty => Err(empty_error(db, StoreKind::Relational)),
        AtPath::Lost {
            empty_file, traces, ..
        } => Err(lost_error(db, empty_file, &traces, StoreKind::Relational)),
    }
}

/// For a command that creates stores (`peerlite sql`, `migrate`, `kv put`): refuses a path
/// holding the traces of a lost store — any trace, the clock file too — with 14800011;
/// nothing there, a store, or a 0-byte file without traces is `Ok`.
///
/// # Errors
/// 14800011 for a lost store.
pub fn refuse_lost_store(db: &Path) -> Result<()> {
    if super::repair_pending(db) {
        return Ok(()); // the open reports it
    }
    match at_path(db, &naming::default_dir(&crate::StoreConfig::new(db))) {
        AtPath::Lost {
            empty_file, traces, ..
        } => Err(lost_error(db, empty_file, &traces, StoreKind::Relational)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantine_stamps_are_recognised() {
        assert!(is_stamp("20261121T080102.123Z"));
        assert!(is_stamp("20261121T080102.123Z-2"));
        assert!(!is_stamp("2-20261121T080102.123Z"));
        assert!(!is_stamp("20261121T080102.123Z-"));
        assert!(!is_stamp("x"));
    }

    #[test]
    fn each_trace_makes_a_missing_or_empty_file_a_lost_store() {
        for suffix in ["-wal", "-shm", ".clock", ".corrupt", ".repair"] {
            for empty_file in [false, true] {
                let dir = tempfile::tempdir().unwrap();
                let db = dir.path().join("a.db");
                let backups = dir.path().join("backup/a.db");
                if empty_file {
                    std::fs::write(&db, b"").unwrap();
                }
                assert!(
                    matches!(at_path(&db, &backups), AtPath::Nothing | AtPath::Empty),
                    "{suffix}"
                );
                std::fs::write(with_suffix(&db, suffix), b"x").unwrap();
                assert!(
                    matches!(at_path(&db, &backups), AtPath::Lost { empty_file: e, deleted, .. }
                        if e == empty_file && deleted == (!empty_file && suffix == ".clock")),
                    "{suffix}"
                );
                std::fs::write(&db, b"SQLite").unwrap();
                assert_eq!(at_path(&db, &backups), AtPath::File);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let backups = dir.path().join("backup/a.db");
        std::fs::create_dir_all(&backups).unwrap();
        std::fs::write(backups.join("b1.123-0.tmp"), b"x").unwrap();
        assert_eq!(
            at_path(&db, &backups),
            AtPath::Nothing,
            "a leftover is no backup"
        );
        std::fs::write(backups.join("b1"), b"x").unwrap();
        assert!(matches!(at_path(&db, &backups), AtPath::Lost { .. }));
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let backups = dir.path().join("backup/a.db");
        std::fs::create_dir_all(dir.path().join("quarantine/a.db-2-20261121T080102.123Z")).unwrap();
        assert_eq!(
            at_path(&db, &backups),
            AtPath::Nothing,
            "another store's folder"
        );
        std::fs::create_dir_all(dir.path().join("quarantine/a.db-20261121T080102.123Z")).unwrap();
        assert!(matches!(at_path(&db, &backups), AtPath::Lost { .. }));
    }
}
