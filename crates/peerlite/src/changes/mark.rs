//! Where the clock resumes, and which database this is: the high-water mark and the epoch,
//! kept so that neither goes back when the database file does.
//!
//! The mark is persisted inside the database with every transaction that stamps, which covers
//! restarts. But a restore, a repair or a re-creation replaces the file with an older one (or
//! none), and the mark inside goes back with it: the clock would issue timestamps it already
//! issued, and a newer edit could lose to an older, discarded one that a peer still holds. So
//! the mark never goes back:
//!
//! - **restore** keeps the larger of the running clock's mark (which covers the replaced
//!   database's), the backup's, and every timestamp in the restored clock tables;
//! - **open** never resumes below the clock tables' timestamps when it lacks proof that the
//!   database's own mark is complete (a new, replaced or re-numbered database), clamped like a
//!   received timestamp — a row from a peer far in the future does not drag the clock along;
//! - **a small file beside the database**, `NAME.clock`, holds a *reserved ceiling*: before a
//!   transaction commits a timestamp above it, the ceiling is raised a second ahead
//!   ([`LEASE`]), so it is written at most about once a second of clock progress, not per
//!   commit (and a database that resumes from it runs at most a second ahead). A
//!   repaired, rebuilt or re-created database resumes past it even when the damaged file was
//!   unreadable — salvage reads what it can (its meta and clock tables are also learned), but a
//!   file whose header or key pages are gone gives nothing, and then only this file knows how
//!   far the clock went, which matters exactly when the clock had run ahead of the wall clock.
//!
//! An open that finds the database's own mark more than a lease below the file's ceiling knows
//! the database is an older copy of itself put back by hand (a `cp` of the file, a snapshot),
//! which would re-issue sequence numbers its peers have passed: it gives the database a new
//! epoch, so peers read it from the start.
//!
//! The same file records the epoch the database has (or is about to get: a restore writes the
//! new epoch here *before* it copies the backup in). An open that finds another epoch in the
//! database — a copy put back by a restore or repair that stopped half-way, or by hand — gives
//! the database a new epoch, so peers never take it for the one they knew. A rebuild marks the
//! file the same way before it installs anything. The file is written only by stores that sync
//! (a transaction that stamps, a restore of a distributed store); a damaged or missing one is
//! ignored (the database's own mark and the clock tables still hold).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::hlc::{COUNTER_BITS, MAX_DRIFT_MS};
use super::registers;
use super::registry;
use super::state::SyncState;
use crate::error::{Error, Result};
use crate::store::meta;
use crate::store::schema::table_exists;

/// How far ahead of the clock the ceiling is reserved: a second. A database that resumes from
/// the ceiling (re-created, repaired) runs that much ahead of what it issued; longer leases
/// would write the file less often but let repeated losses push clocks toward the clamp.
pub(crate) const LEASE: u64 = 1_000 << COUNTER_BITS;

const HEADER: &str = "peerlite clock 1";

/// `NAME.clock` beside the database.
pub(crate) fn path(db: &Path) -> PathBuf {
    let mut os = db.as_os_str().to_owned();
    os.push(".clock");
    PathBuf::from(os)
}

/// The file's content.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Sidecar {
    /// The epoch the database has or is about to get (empty: replaced, give it a new one).
    pub epoch: String,
    /// No timestamp above it was ever committed.
    pub ceiling: u64,
}

fn checksum(body: &str) -> String {
    blake3::hash(body.as_bytes()).to_hex()[..16].to_owned()
}

impl Sidecar {
    fn encode(&self) -> String {
        let body = format!("{HEADER}\nepoch {}\nceiling {}\n", self.epoch, self.ceiling);
        format!("{body}check {}\n", checksum(&body))
    }

    fn decode(text: &str) -> Option<Sidecar> {
        let (body, check) = text.rsplit_once("check ")?;
        if check.trim() != checksum(body) {
            return None;
        }
        let mut lines = body.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let epoch = lines.next()?.strip_prefix("epoch ")?.to_owned();
        let ceiling = lines.next()?.strip_prefix("ceiling ")?.parse().ok()?;
        Some(Sidecar { epoch, ceiling })
    }
}

/// The file beside `db`, when it exists and is intact.
pub(crate) fn read(db: &Path) -> Option<Sidecar> {
    let file = path(db);
    let text = std::fs::read_to_string(&file).ok()?;
    let found = Sidecar::decode(&text);
    if found.is_none() {
        tracing::warn!(?file, "the clock file is damaged; ignoring it");
    }
    found
}

/// Writes the file whole: a temporary file, synced, renamed over it, the directory synced.
fn write(db: &Path, sidecar: &Sidecar) -> Result<()> {
    use std::io::Write;
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let file = path(db);
    // A name of its own per write: two processes (a restore and an opener) writing at once
    // must not write into one temporary file, nor rename it from under each other (the
    // second rename failed with "No such file or directory").
    let mut tmp = file.clone().into_os_string();
    tmp.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(sidecar.encode().as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("writing the clock file", file, e));
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        #[cfg(unix)]
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("syncing directory", dir, e))?;
    }
    Ok(())
}

/// The largest timestamp in the clock tables (existence events and column registers), clamped
/// like a received one to `now_ms + MAX_DRIFT_MS`.
pub(crate) fn clock_floor(conn: &Connection, now_ms: u64) -> rusqlite::Result<u64> {
    let mut floor = 0u64;
    for meta in registry::load_all(conn)? {
        let clock = meta.clock();
        if !table_exists(conn, &clock)? {
            continue;
        }
        let max: Option<i64> =
            conn.query_row(&format!("SELECT max(hlc) FROM {clock}"), [], |r| r.get(0))?;
        floor = floor.max(max.unwrap_or(0) as u64);
        let mut st = conn.prepare(&format!("SELECT cols FROM {clock} WHERE cols IS NOT NULL"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let rusqlite::types::ValueRef::Blob(b) = r.get_ref(0)? {
                for reg in registers::decode(b) {
                    floor = floor.max(reg.hlc);
                }
            }
        }
    }
    Ok(floor.min((now_ms + MAX_DRIFT_MS) << COUNTER_BITS))
}

/// The database's persisted high-water mark (0 when none).
fn stored_mark(conn: &Connection) -> rusqlite::Result<u64> {
    Ok(meta::get(conn, "hlc")?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0))
}

/// Where a database resumes, decided at open.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    /// The clock's high-water mark.
    pub high_water: u64,
    /// The ceiling already reserved in the clock file.
    pub reserved: u64,
}

/// Decides the epoch and the high-water mark of the database on `conn` as it opens.
/// `replaced` says that a repair just put this file in place; `learned` is a mark found
/// elsewhere (a salvaged copy of the damaged file).
pub(crate) fn on_open(
    conn: &Connection,
    db: &Path,
    now_ms: u64,
    writable: bool,
    replaced: bool,
    learned: u64,
) -> Result<Resume> {
    let sql_err = |e| Error::from_sqlite(e, db);
    if !writable {
        return Ok(Resume {
            high_water: stored_mark(conn).map_err(sql_err)?.max(learned),
            reserved: 0,
        });
    }
    // Another process raises the clock file's ceiling inside its write transaction, before
    // it commits the mark that goes with it: read between the two, the file and the database
    // disagree as if the database had been put back (a false "clock lies behind its clock
    // file", and a new epoch, when a process opened the store while another committed). So
    // that verdict is only believed when it holds under the write lock, which no such
    // commit is in the middle of (the lock is taken only then: it may wait).
    if !conn.is_autocommit() || !looks_put_back(conn, db)? {
        return decide(conn, db, now_ms, replaced, learned);
    }
    if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
        return decide(conn, db, now_ms, replaced, learned);
    }
    let decided = decide(conn, db, now_ms, replaced, learned);
    let end = if decided.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = conn.execute_batch(end).map_err(sql_err);
    if decided.is_ok() {
        ended?;
    }
    decided
}

/// Whether the database's mark lies more than a lease behind the clock file's ceiling (see
/// [`decide`]).
fn looks_put_back(conn: &Connection, db: &Path) -> Result<bool> {
    let sql_err = |e| Error::from_sqlite(e, db);
    let Some(sidecar) = read(db) else {
        return Ok(false);
    };
    let has_epoch = meta::get(conn, "epoch").map_err(sql_err)?.is_some();
    let stored = stored_mark(conn).map_err(sql_err)?;
    Ok(has_epoch && stored.saturating_add(LEASE) < sidecar.ceiling)
}

/// [`on_open`] of a writable database.
fn decide(
    conn: &Connection,
    db: &Path,
    now_ms: u64,
    replaced: bool,
    learned: u64,
) -> Result<Resume> {
    let sql_err = |e| Error::from_sqlite(e, db);
    let sidecar = read(db);
    let stored_epoch = meta::get(conn, "epoch").map_err(sql_err)?;
    let stored = stored_mark(conn).map_err(sql_err)?;
    let mut high = stored.max(learned);
    // Every commit that stamps reserves the clock file's ceiling at most a lease past the
    // mark it commits. A database whose mark lies further behind is an older copy of itself
    // put back by hand (a `cp` of the file, a snapshot) under a newer clock file: it would
    // number new changes with sequence numbers its peers have passed.
    let put_back = sidecar
        .as_ref()
        .is_some_and(|s| stored_epoch.is_some() && stored.saturating_add(LEASE) < s.ceiling);
    if put_back {
        tracing::warn!(db = ?db, mark = stored, ceiling = sidecar.as_ref().map_or(0, |s| s.ceiling), epoch = ?stored_epoch, "the database's clock lies behind its clock file: it was put back from a copy of an earlier state; it starts a new epoch");
    }
    let renew = replaced
        || put_back
        || stored_epoch.is_none()
        || sidecar
            .as_ref()
            .is_some_and(|s| Some(&s.epoch) != stored_epoch.as_ref());
    let epoch = if renew {
        let fresh = meta::new_epoch(db);
        meta::set(conn, "epoch", &fresh).map_err(sql_err)?;
        // A file put back (repaired, or a restore finished by this open) keeps its rows'
        // timestamps: what peers acknowledged of them stays acknowledged.
        if let Some(old) = &stored_epoch {
            crate::sync::watermark::carry_acked_stamps(conn, old, &fresh).map_err(sql_err)?;
        } else {
            // Nothing put back from an earlier copy: what it holds of its own is newest.
            crate::sync::heard::mark_whole(conn, &fresh).map_err(sql_err)?;
        }
        fresh
    } else {
        stored_epoch.unwrap_or_default()
    };
    // Without proof that the database's own mark is complete, resume past the clock file's
    // ceiling and everything in the clock tables.
    if renew || sidecar.is_none() {
        high = high
            .max(sidecar.as_ref().map_or(0, |s| s.ceiling))
            .max(clock_floor(conn, now_ms).map_err(sql_err)?);
    }
    if registry::exists(conn).map_err(sql_err)? {
        registry::migrate(conn).map_err(sql_err)?;
    }
    let reserved = match sidecar {
        Some(s) if s.epoch != epoch => {
            let updated = Sidecar {
                epoch,
                ceiling: s.ceiling.max(high),
            };
            // Not fatal: a file left with the old epoch only makes the next open start yet
            // another epoch (peers then read this database from the start once more).
            match write(db, &updated) {
                Ok(()) => updated.ceiling,
                Err(e) => {
                    tracing::warn!(%e, "could not record the new epoch in the clock file");
                    s.ceiling
                }
            }
        }
        Some(s) => s.ceiling,
        None => 0,
    };
    if high > stored_mark(conn).map_err(sql_err)? {
        meta::set(conn, "hlc", &high.to_string()).map_err(sql_err)?;
    }
    Ok(Resume {
        high_water: high,
        reserved,
    })
}

/// Before a transaction commits timestamps: raises the clock file's ceiling a lease ahead
/// when the clock has passed it. A failure to write it is logged, not fatal — the database's
/// own mark still commits, and the next commit tries again.
pub(crate) fn reserve(conn: &Connection, db: &Path, sync: &SyncState) {
    let high = sync.hlc.high_water();
    if high <= sync.reserved.load(Ordering::Acquire) {
        return;
    }
    let current = read(db);
    let epoch = match &current {
        Some(s) => s.epoch.clone(),
        None => match meta::get(conn, "epoch") {
            Ok(Some(e)) => e,
            _ => return,
        },
    };
    let ceiling = current
        .map_or(0, |s| s.ceiling)
        .max(high.saturating_add(LEASE));
    match write(db, &Sidecar { epoch, ceiling }) {
        Ok(()) => {
            sync.reserved.fetch_max(ceiling, Ordering::AcqRel);
        }
        Err(e) => tracing::warn!(%e, "could not raise the clock's reserved ceiling"),
    }
}

/// Before a restore copies a backup in: the epoch the restored database will have. A store that
/// syncs (it has distributed tables, or a clock file already) records it in the clock file
/// first, with the running clock's mark, so a restore that stops half-way is still given a new
/// epoch, and a clock that does not go back, by the next open.
pub(crate) fn before_replace(conn: &Connection, db: &Path, sync: &SyncState) -> Result<String> {
    let fresh = meta::new_epoch(db);
    let syncs =
        read(db).is_some() || registry::exists(conn).map_err(|e| Error::from_sqlite(e, db))?;
    if syncs {
        let ceiling = read(db).map_or(0, |s| s.ceiling).max(sync.hlc.high_water());
        write(
            db,
            &Sidecar {
                epoch: fresh.clone(),
                ceiling,
            },
        )?;
        sync.reserved.fetch_max(ceiling, Ordering::AcqRel);
    }
    Ok(fresh)
}

/// A live database that turns out to be a copy of an earlier state of itself (a peer holds
/// changes of its epoch that it never issued): it takes a new epoch now, the clock file first
/// (an open that finds the two disagreeing starts yet another one), so peers read it from the
/// start as the database it is.
pub(crate) fn renew_epoch(conn: &Connection, db: &Path, sync: &SyncState) -> Result<String> {
    let fresh = before_replace(conn, db, sync)?;
    meta::set(conn, "epoch", &fresh).map_err(|e| Error::from_sqlite(e, db))?;
    Ok(fresh)
}

/// After a restore copied a backup in: the new epoch, and a mark that does not go back — the
/// larger of the running clock's, the backup's and the restored clock tables' timestamps.
pub(crate) fn after_replace(
    conn: &Connection,
    db: &Path,
    sync: &SyncState,
    epoch: &str,
) -> Result<()> {
    let sql_err = |e| Error::from_sqlite(e, db);
    let high = sync
        .hlc
        .high_water()
        .max(stored_mark(conn).map_err(sql_err)?)
        .max(clock_floor(conn, sync.hlc.now_ms()).map_err(sql_err)?);
    sync.hlc.restore(high);
    // The restored file may hold higher sequence numbers than the running counter reached
    // (a reset's seed numbered every row it pulled): continuing from the counter would give
    // new changes numbers peers have already passed.
    sync.resume(super::layer::max_seq(conn).map_err(sql_err)?, high);
    if let Some(old) = meta::get(conn, "epoch").map_err(sql_err)? {
        crate::sync::watermark::carry_acked_stamps(conn, &old, epoch).map_err(sql_err)?;
    }
    meta::set(conn, "epoch", epoch).map_err(sql_err)?;
    meta::set(conn, "hlc", &high.to_string()).map_err(sql_err)?;
    if registry::exists(conn).map_err(sql_err)? {
        registry::migrate(conn).map_err(sql_err)?;
    }
    Ok(())
}

/// Before a repair puts another file in place of `db`: whatever database the next open finds
/// is given a new epoch (the clock file forgets the old one; its ceiling stays).
pub(crate) fn mark_replaced(db: &Path) {
    if let Some(mut s) = read(db) {
        s.epoch.clear();
        if let Err(e) = write(db, &s) {
            tracing::warn!(%e, "could not mark the database as replaced in the clock file");
        }
    }
}

/// The mark the database file `file` persisted (0 when it cannot be read): a restore's copy of
/// the data it replaces tells how far the clock of every process writing it went.
pub(crate) fn stored_mark_of(file: &Path, key: Option<&crate::EncryptionKey>) -> u64 {
    crate::store::connection::open_file(file, key)
        .ok()
        .and_then(|conn| stored_mark(&conn).ok())
        .unwrap_or(0)
}

/// The mark the database on `conn` persisted (0 when it cannot be read).
pub(crate) fn stored_mark_on(conn: &Connection) -> u64 {
    stored_mark(conn).unwrap_or(0)
}

/// Raises the mark the database on `conn` persisted to `mark`, when it lies below.
pub(crate) fn raise_stored_mark(conn: &Connection, db: &Path, mark: u64) -> Result<()> {
    let sql_err = |e| Error::from_sqlite(e, db);
    if mark > stored_mark(conn).map_err(sql_err)? {
        meta::set(conn, "hlc", &mark.to_string()).map_err(sql_err)?;
    }
    Ok(())
}

/// The mark a salvaged copy of a damaged database still shows: its meta and clock tables.
pub(crate) fn learned_from(salvage: &Path, key: Option<&crate::EncryptionKey>, now_ms: u64) -> u64 {
    let Ok(conn) = crate::store::connection::open_file(salvage, key) else {
        return 0;
    };
    let mark = stored_mark(&conn).unwrap_or(0);
    mark.max(clock_floor(&conn, now_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// The other process's writer, mid-commit: its ceiling reserved, its mark not yet
        /// committed.
        static COMMITTING: std::cell::RefCell<Option<Connection>> = const { std::cell::RefCell::new(None) };
    }

    /// The opener waits for the lock: the other process commits meanwhile.
    fn commit_the_other(_: i32) -> bool {
        COMMITTING.with(|c| {
            if let Some(conn) = c.borrow_mut().take() {
                conn.execute_batch("COMMIT").unwrap();
            }
        });
        true
    }

    /// Adversary round 4, LOW-1: a `peerlite sql` run while a reset replayed late commits
    /// warned that "the database's clock lies behind its clock file: it was put back from a
    /// copy" and took a new epoch. A writer raises the clock file's ceiling inside its write
    /// transaction, before it commits the mark that goes with it; an open that read the two in
    /// between took the database for a copy put back by hand. It believes that verdict only
    /// when it holds under the write lock.
    #[test]
    fn an_open_beside_a_commit_in_flight_is_no_put_back() {
        const T0: u64 = 1_700_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        {
            let store = crate::RdbStore::open(
                crate::StoreConfig::new(&db)
                    .device_id("a")
                    .clock(std::sync::Arc::new(crate::changes::ManualClock::new(T0))),
            )
            .unwrap();
            store
                .execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)", &[])
                .unwrap();
            store
                .set_distributed_tables(
                    &["note"],
                    crate::changes::DistributedType::Device,
                    &crate::changes::DistributedConfig::default(),
                )
                .unwrap();
            store
                .execute("INSERT INTO note (text) VALUES ('x')", &[])
                .unwrap();
            store.close().unwrap();
        }
        let mark_of = |conn: &Connection| stored_mark(conn).unwrap();
        let epoch_of = |conn: &Connection| meta::get(conn, "epoch").unwrap().unwrap();
        let other = Connection::open(&db).unwrap();
        let (mark, epoch) = (mark_of(&other), epoch_of(&other));
        // The other process commits a stamp a minute later: reserved, not yet committed.
        let later = mark + (60_000 << COUNTER_BITS);
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        meta::set(&other, "hlc", &later.to_string()).unwrap();
        let sidecar = read(&db).unwrap();
        write(
            &db,
            &Sidecar {
                epoch: sidecar.epoch,
                ceiling: later + LEASE,
            },
        )
        .unwrap();
        COMMITTING.with(|c| *c.borrow_mut() = Some(other));
        let mut opener = Connection::open(&db).unwrap();
        opener.busy_handler(Some(commit_the_other)).unwrap();
        let resume = on_open(&opener, &db, T0 + 60_000, true, false, 0).unwrap();
        COMMITTING.with(|c| c.borrow_mut().take());
        assert_eq!(epoch_of(&opener), epoch, "no new epoch");
        assert!(resume.high_water >= later);
    }

    /// Adversary round 4, LOW-1: two writers of the clock file at once (a restore, and a
    /// `peerlite sql` opening the store in another process) shared one temporary file,
    /// `NAME.clock.tmp`: one renamed it from under the other, whose write then failed ("could
    /// not record the new epoch in the clock file … No such file or directory"), or renamed
    /// the other's half-written bytes. A write never touches another writer's temporary file.
    #[test]
    fn a_write_leaves_another_writers_temporary_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        let file = path(&db).display().to_string();
        // Other writers between their create and their rename: the shared name of old, and
        // the name of another process's write.
        let theirs = [format!("{file}.tmp"), format!("{file}.1.0.tmp")];
        for t in &theirs {
            std::fs::write(t, "half-written").unwrap();
        }
        let s = Sidecar {
            epoch: "e1".into(),
            ceiling: 7 << COUNTER_BITS,
        };
        write(&db, &s).unwrap();
        write(&db, &s).unwrap();
        assert_eq!(read(&db), Some(s));
        for t in &theirs {
            assert_eq!(
                std::fs::read_to_string(t).ok().as_deref(),
                Some("half-written"),
                "{t}"
            );
        }
    }

    #[test]
    fn the_file_round_trips_and_a_damaged_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        assert_eq!(read(&db), None);
        let s = Sidecar {
            epoch: "e1".into(),
            ceiling: 42 << COUNTER_BITS,
        };
        write(&db, &s).unwrap();
        assert_eq!(read(&db), Some(s.clone()));
        let text = std::fs::read_to_string(path(&db)).unwrap();
        let changed = text.replace(
            &format!("ceiling {}", s.ceiling),
            &format!("ceiling {}", s.ceiling + 1),
        );
        assert_ne!(changed, text);
        std::fs::write(path(&db), changed).unwrap();
        assert_eq!(read(&db), None, "a changed digit fails the check");
        write(&db, &s).unwrap();
        mark_replaced(&db);
        assert_eq!(
            read(&db),
            Some(Sidecar {
                epoch: String::new(),
                ceiling: s.ceiling
            })
        );
    }
}
