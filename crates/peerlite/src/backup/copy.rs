//! Copying a database with SQLite's backup API, in steps, from ONE pinned read snapshot.
//!
//! A plain stepped backup takes a fresh read lock for every step, and any commit made between
//! two steps by another connection or process restarts it from page 1 — under a steady writer
//! it can run forever (seed 001). Here the source connection opens a read transaction before
//! the first step and keeps it until the last: in WAL mode that snapshot never changes and
//! never blocks writers, so the copy is exactly the state at its start and never restarts.
//! Restarts are still counted (the pages remaining going up between steps), so a test and the
//! benchmark can show the number is zero.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::store::EncryptionKey;

/// How far a backup or restore has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Pages still to copy.
    pub remaining: u32,
    /// Pages in the source.
    pub page_count: u32,
}

/// What a stepped copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepStats {
    /// Pages in the source when the copy finished.
    pub page_count: u64,
    /// Times the copy started over because the source changed (0 from a pinned snapshot).
    pub restarts: u32,
    /// Steps taken.
    pub steps: u32,
}

/// Opens a new, empty destination file for a copy, keyed like the source.
pub(crate) fn open_destination(path: &Path, key: Option<&EncryptionKey>) -> Result<Connection> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{}-journal", path.display()));
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| Error::from_sqlite(e, path))?;
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
    if let Some(key) = key {
        conn.pragma_update(None, "key", key.secret())
            .map_err(|e| Error::from_sqlite(e, path))?;
    }
    Ok(conn)
}

/// Opens a connection on `src` and starts the read transaction that pins its snapshot.
pub(crate) fn pin_snapshot(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN")
        .map_err(|e| Error::from_sqlite(e, path))?;
    // The first read is what actually takes the snapshot.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| Error::from_sqlite(e, path))?;
    Ok(())
}

/// Copies all of `src` into `dst` in steps of `pages_per_step`, calling `after_step` after each
/// step (it may return a new step size) and stopping (with [`Error::Cancelled`]) when `cancel`
/// is set between steps.
pub(crate) fn run_steps(
    src: &Connection,
    dst: &mut Connection,
    pages_per_step: i32,
    after_step: &mut dyn FnMut(Progress) -> Option<i32>,
    cancel: Option<&AtomicBool>,
    dst_path: &Path,
) -> Result<StepStats> {
    let backup = Backup::new(src, dst).map_err(|e| Error::from_sqlite(e, dst_path))?;
    steps(&backup, pages_per_step, after_step, cancel, dst_path)
}

/// [`run_steps`] into a live database, calling `locked` once the copy holds the destination's
/// write lock and before it writes a page: what `locked` reads of the destination (through
/// other connections) is exactly the data the copy replaces, since nobody can commit to it
/// until the copy has. An error from `locked` ends the copy with the destination unchanged.
pub(crate) fn run_steps_locked(
    src: &Connection,
    dst: &mut Connection,
    pages_per_step: i32,
    after_step: &mut dyn FnMut(Progress) -> Option<i32>,
    locked: &mut dyn FnMut() -> Result<()>,
    cancel: Option<&AtomicBool>,
    dst_path: &Path,
) -> Result<StepStats> {
    let sql_err = |e| Error::from_sqlite(e, dst_path);
    // A copy of no pages would be done (committed) by the step that takes the lock.
    let pages: i64 = src
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(sql_err)?;
    if pages < 1 {
        return Err(Error::BackupInvalid {
            path: dst_path.to_path_buf(),
            reason: "the backup holds no pages".into(),
        });
    }
    let backup = Backup::new(src, dst).map_err(sql_err)?;
    // A step of no pages takes the locks (the destination's write lock stays held until the
    // copy is done or dropped) and copies nothing. Bounded: each Busy waited the busy timeout.
    let mut tries = 0;
    loop {
        match backup.step(0).map_err(sql_err)? {
            StepResult::More => break,
            StepResult::Busy | StepResult::Locked if tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                return Err(sql_err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked by another connection".into()),
                )));
            }
        }
    }
    locked()?;
    steps(&backup, pages_per_step, after_step, cancel, dst_path)
}

/// The steps of a copy, to its end.
fn steps(
    backup: &Backup<'_, '_>,
    mut pages_per_step: i32,
    after_step: &mut dyn FnMut(Progress) -> Option<i32>,
    cancel: Option<&AtomicBool>,
    dst_path: &Path,
) -> Result<StepStats> {
    let mut stats = StepStats::default();
    let mut last_remaining: Option<i32> = None;
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
            return Err(Error::Cancelled { what: "backup" });
        }
        let step = backup
            .step(pages_per_step.max(1))
            .map_err(|e| Error::from_sqlite(e, dst_path))?;
        stats.steps += 1;
        let p = backup.progress();
        // Each completed step copies pages, so "remaining" falls; if it did not, the copy went
        // back to page 1 because the source changed.
        let advanced = matches!(step, StepResult::More | StepResult::Done);
        if advanced
            && last_remaining.is_some_and(|prev| p.remaining >= prev)
            && step != StepResult::Done
        {
            stats.restarts += 1;
        }
        if advanced {
            last_remaining = Some(p.remaining);
        }
        stats.page_count = p.pagecount.max(0) as u64;
        let next = after_step(Progress {
            remaining: p.remaining.max(0) as u32,
            page_count: p.pagecount.max(0) as u32,
        });
        if let Some(pages) = next {
            pages_per_step = pages;
        }
        match step {
            StepResult::Done => return Ok(stats),
            StepResult::More => {}
            // Not a failure: another connection holds a lock for a moment (seed 001).
            StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(1)),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(path: &Path, rows: i64) -> Connection {
        let c = Connection::open(path).unwrap();
        c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
            .unwrap();
        c.execute_batch("CREATE TABLE t(x INTEGER PRIMARY KEY, pad BLOB)")
            .unwrap();
        c.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t(pad) SELECT randomblob(1000) FROM n",
            [rows],
        )
        .unwrap();
        c
    }

    #[test]
    fn a_pinned_snapshot_never_restarts_and_copies_the_start_state() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src.db");
        let writer = filled(&src_path, 2000);
        let src = Connection::open_with_flags(&src_path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        pin_snapshot(&src, &src_path).unwrap();
        let dst_path = dir.path().join("dst.db");
        let mut dst = open_destination(&dst_path, None).unwrap();
        let mut steps = 0;
        let stats = run_steps(
            &src,
            &mut dst,
            8,
            &mut |_| {
                steps += 1;
                // A commit from another connection between every step.
                writer
                    .execute("INSERT INTO t(pad) VALUES (x'00')", [])
                    .unwrap();
                None
            },
            None,
            &dst_path,
        )
        .unwrap();
        assert_eq!(stats.restarts, 0);
        assert!(steps > 10);
        let copied: i64 = dst
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(copied, 2000, "exactly the snapshot the copy started from");
    }

    #[test]
    fn an_unpinned_stepped_copy_restarts_under_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src.db");
        let writer = filled(&src_path, 500);
        let src = Connection::open(&src_path).unwrap();
        let dst_path = dir.path().join("dst.db");
        let mut dst = open_destination(&dst_path, None).unwrap();
        let mut commits = 0;
        let stats = run_steps(
            &src,
            &mut dst,
            8,
            &mut |_| {
                if commits < 5 {
                    commits += 1;
                    writer
                        .execute("INSERT INTO t(pad) VALUES (x'00')", [])
                        .unwrap();
                }
                None
            },
            None,
            &dst_path,
        )
        .unwrap();
        assert!(stats.restarts >= 1, "{stats:?}");
    }

    #[test]
    fn cancelling_between_steps_stops_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let src_path = dir.path().join("src.db");
        let _writer = filled(&src_path, 200);
        let src = Connection::open(&src_path).unwrap();
        let dst_path = dir.path().join("dst.db");
        let mut dst = open_destination(&dst_path, None).unwrap();
        let cancel = AtomicBool::new(false);
        let err = run_steps(
            &src,
            &mut dst,
            4,
            &mut |_| {
                cancel.store(true, Ordering::Release);
                None
            },
            Some(&cancel),
            &dst_path,
        )
        .unwrap_err();
        assert_eq!(err.code(), 17020005);
    }
}
