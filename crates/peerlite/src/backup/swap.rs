//! Restore by moving files, when the store is provably alone: each gigabyte written once.
//!
//! The general restore copies the backup into the live database through the WAL (one
//! transaction, then a checkpoint: two writes of every page) after writing the replaced data
//! out as `pre-restore` (a third). When no other connection holds the database, the data it
//! replaces can be kept by renaming instead:
//!
//! 1. the backup is copied beside the database (`DB.<pid>.restoring`), given the new epoch and
//!    the store's device identity, put in WAL mode and synced — the one write of the data;
//! 2. the proof that nobody else holds the store: the store's own readers and checkpoint
//!    connection are closed, and the writer switches the database out of WAL mode holding the
//!    file's exclusive lock (`locking_mode=EXCLUSIVE`, `journal_mode=DELETE`). SQLite only
//!    allows that when no other connection, in any process, has the database open: each holds
//!    a shared lock on the file for as long as it is open in WAL mode. Refused at once (no
//!    waiting), it means another connection holds the store, and the restore copies instead.
//!    Holding the lock, the writer folded the WAL into the file and removed `-wal` and `-shm`:
//!    the file alone is the whole database, and nobody can read or change it until the swap.
//!    A connection that opened the file but has not read it holds no lock, though: kept across
//!    the rename, its first statement would read the old file through the new file's WAL (a
//!    mix, which a test saw as "database disk image is malformed", and its writes land in the
//!    new database). So no other process may have the file open either ([`holders`]: their
//!    descriptors in `/proc`); one that has it, or no `/proc`, and the restore copies;
//! 3. `quick_check` of the old database (a damaged one is left to the copying restore, which
//!    quarantines it); the old file is hard-linked into the backup folder under a temporary
//!    name, and a journal (`DB.<pid>.swap`) records that link and what its manifest will say;
//! 4. a last look for other processes holding the file (one may have opened it since step 2:
//!    the lock keeps it from reading, not from opening); then the new file is renamed over the
//!    database: the commit point, atomic. One more look right after the rename: a process
//!    that opened the old file between the last look and the rename still holds it, unread
//!    (the writer's lock is still held). Seen, the old file is renamed back from its link
//!    over the new one (`undo`) and the restore copies. A kill before that rename leaves the
//!    swap done (the journal finishes it); after it, the old database, and the next open
//!    drops the journal, whose link is gone;
//! 5. the old writer connection closes, the store opens a new one on the new file, and the old
//!    file, now only the backup folder's link, is checksummed and installed as `pre-restore`
//!    with its manifest; the journal goes.
//!
//! A kill before 4 leaves the old database (the next open switches it back to WAL and removes
//! the copy and the link); a kill after 4 leaves the new one, and the next open (or listing)
//! finishes step 5 from the journal ([`finish_interrupted`]). Other connections opening the
//! store during the swap wait for the lock; a peerlite connection whose file was replaced while
//! it waited opens again (`store::connection::open`), so it never reads the old file with the
//! new file's WAL. What the looks cannot see: processes of other users this one may not
//! inspect, processes in another PID namespace, connections of this process that are not the
//! store's (SQLite shares descriptors within a process, so they cannot be told apart), and a
//! program that opens the new file in the moment between the rename and an undo (it then
//! holds a file that is no longer the database; a peerlite reader too, whose check sees the
//! old file back at the path). See the README's restore notes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::copy::Progress;
use super::holders::{self, Holders, nobody_else_has, test_gate};
use super::manifest::{self, CHECKED, Manifest};
use super::naming::{self, PRE_RESTORE, with_suffix};
use super::{kind_name, sync_dir};
use crate::changes::identity::Kept;
use crate::error::{Error, Result};
use crate::store::checkpointer::Checkpointer;
use crate::store::connection::{self, Role, file_id};
use crate::store::meta;
use crate::store::rdb::Inner;
use crate::store::writer::Writer;

/// What a swap did.
#[derive(Debug)]
pub(crate) struct Swapped {
    pub pre_restore: PathBuf,
    pub earlier: Option<PathBuf>,
    pub pages: u64,
    pub keep: Duration,
    pub copy: Duration,
}

/// The journal of a swap between its link and the `pre-restore` install.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// The old database, linked into the backup folder under a temporary name.
    linked: PathBuf,
    /// Its manifest, but for what only the finished file tells (size, checksum, time).
    manifest: Manifest,
}

/// Why a damaged database is restored by copying: its files are quarantined as they are.
const DAMAGED: &str = "the replaced database is damaged (its files are quarantined)";

fn fresh_path(db: &Path, pid: u32) -> PathBuf {
    with_suffix(db, &format!(".{pid}.restoring"))
}

fn journal_path(db: &Path, pid: u32) -> PathBuf {
    with_suffix(db, &format!(".{pid}.swap"))
}

fn remove_fresh(fresh: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(fresh, suffix));
    }
}

/// Restores `source` into the store by moving files, or returns why not (having changed
/// nothing but the sidecar's epoch): another connection or process holds the store, the old
/// database is damaged, the file system cannot link. Then the restore copies instead.
pub(crate) fn try_swap(
    inner: &Inner,
    slot: &mut Option<Writer>,
    source: &Path,
    identity: &Kept,
    epoch: &str,
    steps: &mut Steps<'_>,
) -> Result<std::result::Result<Swapped, String>> {
    let db = inner.config.path();
    let dir = naming::default_dir(&inner.config);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating backup directory", &dir, e))?;
    let Some(checkpoints) = inner.checkpoints.as_ref() else {
        return Ok(Err("the store is read-only".into()));
    };
    if !same_device(db, &dir) {
        return Ok(Err(
            "the backup folder is on another file system than the database".into(),
        ));
    }
    if let Some(why) = not_one_name(db) {
        return Ok(Err(why.into()));
    }
    let closed = || Error::Closed {
        what: "store",
        kind: crate::StoreKind::Relational,
    };
    let pid = std::process::id();
    let fresh = fresh_path(db, pid);
    let busy = inner.config.busy_timeout;
    // A damaged database is left to the copying restore (it quarantines the files as they
    // are): checked before anything touches it. Then whether anybody else holds the store,
    // asked before the copy (and again after it): with another connection on it, the restore
    // copies into it and must not write the data twice.
    let started = Instant::now();
    let writer = slot.as_mut().ok_or_else(closed)?;
    let seen = data_version(&writer.conn);
    if !sound(&writer.conn) {
        return Ok(Err(DAMAGED.into()));
    }
    if let Err(why) = alone(inner, checkpoints, writer, busy) {
        reopen(inner, slot, checkpoints)?;
        return Ok(Err(why));
    }
    give_back_wal(&writer.conn, busy);
    let checked = started.elapsed();

    // 1. The new database, beside the old one.
    tracing::debug!(step = "copy beside", "restore step");
    let started = Instant::now();
    let pages = match make_fresh(inner, source, &fresh, identity, epoch, steps) {
        Ok(pages) => pages,
        Err(e) => {
            remove_fresh(&fresh);
            return Err(e);
        }
    };
    let mut copy = started.elapsed();

    // 2. Nobody else holds the store.
    let started = Instant::now();
    let writer = slot.as_mut().ok_or_else(closed)?;
    if let Err(why) = alone(inner, checkpoints, writer, busy) {
        remove_fresh(&fresh);
        reopen(inner, slot, checkpoints)?;
        return Ok(Err(why));
    }
    // Another connection committed between the check and the lock (and then closed): what is
    // kept must be what was checked.
    let late_commits = seen.is_none() || data_version(&writer.conn) != seen;
    if late_commits && !sound(&writer.conn) {
        give_back_wal(&writer.conn, busy);
        remove_fresh(&fresh);
        return Ok(Err(DAMAGED.into()));
    }
    // Another process that committed since this one's clock was read (after the copy was
    // made, or before, renewing the epoch the restore announced) took its clock past the new
    // file's mark (this process's clock now): raised, or the next open takes the new file
    // for a copy put back by hand (its mark behind the clock file) and starts an epoch.
    let old_mark = crate::changes::mark::stored_mark_on(&writer.conn);
    if old_mark > inner.sync()?.hlc.high_water()
        && let Err(e) = raise_mark(inner, &fresh, old_mark)
    {
        give_back_wal(&writer.conn, busy);
        remove_fresh(&fresh);
        return Err(e);
    }
    // 3. The old database checked, linked, journaled.
    tracing::debug!(step = "link", "restore step");
    let back_out = || {
        give_back_wal(&writer.conn, busy);
        remove_fresh(&fresh);
    };
    let linked = match link_old(inner, &writer.conn, &dir) {
        Ok(Ok(linked)) => linked,
        Ok(Err(why)) => {
            back_out();
            return Ok(Err(why));
        }
        Err(e) => {
            back_out();
            return Err(e);
        }
    };
    let journal = journal_path(db, pid);
    let journaled = serde_json::to_vec(&linked.journal)
        .map_err(|e| {
            Error::io(
                "encoding the swap journal",
                &journal,
                std::io::Error::other(e),
            )
        })
        .and_then(|bytes| manifest::write_synced(&journal, &bytes))
        .and_then(|()| sync_dir(parent(db)));
    // 4. The swap, after a last look for a program that opened the file since step 2 (it
    // cannot read it while the lock is held, but would once the file is replaced).
    tracing::debug!(step = "swap", "restore step");
    let old = file_id(db);
    let swapped = journaled.and_then(|()| {
        if let Err(why) = nobody_else_has(db) {
            return Ok(Err(why));
        }
        test_gate();
        std::fs::rename(&fresh, db)
            .map(Ok)
            .map_err(|e| Error::io("renaming the restored file", db, e))
    });
    let refused = match swapped {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(Ok(Err(why))),
        Err(e) => Some(Err(e)),
    };
    if let Some(refused) = refused {
        let _ = std::fs::remove_file(&linked.journal.linked);
        let _ = std::fs::remove_file(&journal);
        back_out();
        return refused;
    }
    // One who opened the old file between that look and the rename still holds it, and the
    // lock still keeps it from reading: seen now, the old file goes back (see `undo`).
    if let Some(Holders::Found(pid)) = old.map(holders::others_holding) {
        tracing::debug!(step = "undo", "restore step");
        tracing::info!(
            pid,
            "another process opened the database during the swap; putting it back and restoring by copy"
        );
        match undo(db, &journal, &linked.journal.linked) {
            Ok(()) => {
                give_back_wal(&writer.conn, busy);
                return Ok(Err(format!(
                    "another process (pid {pid}) opened the database during the swap, so the \
                     replaced file was put back"
                )));
            }
            Err(e) => tracing::warn!(%e, "could not put the replaced database back"),
        }
    }
    let keep_before_swap = started.elapsed();
    let started = Instant::now();
    // The rename is done: whatever fails from here, the store's connections must leave the
    // old file (it is `pre-restore` now), so nothing returns before they have.
    if let Err(e) = sync_dir(parent(db)) {
        tracing::warn!(%e, "the directory of the restored database could not be synced");
    }
    // 5. The store's connections move to the new file; the old one becomes `pre-restore`.
    drop(slot.take());
    *slot = Some(Writer::open(&inner.config, &inner.layers, checkpoints)?);
    copy += started.elapsed();
    tracing::debug!(step = "finish", "restore step");
    let started = Instant::now();
    let pre_restore = finish(&journal, linked.journal)?;
    Ok(Ok(Swapped {
        pre_restore,
        earlier: linked.earlier,
        pages,
        keep: checked + keep_before_swap + started.elapsed(),
        copy,
    }))
}

/// Why the database file is not simply the one name in its folder: a rename would replace
/// a symbolic link (not the file it names), and the file's other hard links would keep the
/// old data. Then the restore copies into the file itself.
#[cfg(unix)]
fn not_one_name(db: &Path) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(db).ok()?;
    if meta.file_type().is_symlink() {
        Some("the database path is a symbolic link")
    } else if meta.nlink() > 1 {
        Some("the database file has other hard links")
    } else {
        None
    }
}

#[cfg(not(unix))]
fn not_one_name(_: &Path) -> Option<&'static str> {
    None
}

fn parent(db: &Path) -> &Path {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(unix)]
fn same_device(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_device(_: &Path, _: &Path) -> bool {
    false
}

/// How the copy reports and stops, as a backup's does.
pub(crate) struct Steps<'a> {
    pub pages_per_step: i32,
    pub page_size: u32,
    pub progress: &'a mut dyn FnMut(Progress),
    pub cancel: Option<&'a AtomicBool>,
}

/// Copies `source` to `fresh` in steps of `pages_per_step` pages (the kernel copies; each
/// step's writeback starts at once, so the final fsync finds little left), reporting
/// progress and stopping when cancelled. Returns the pages copied.
fn copy_in_steps(source: &Path, fresh: &Path, steps: &mut Steps<'_>) -> Result<u64> {
    use std::io::Read;
    let io = |e| Error::io("copying the backup", fresh, e);
    let mut from = std::fs::File::open(source).map_err(io)?;
    let page_size = u64::from(steps.page_size.max(512));
    let page_count = from.metadata().map_err(io)?.len() / page_size;
    let mut to = std::fs::File::create(fresh).map_err(io)?;
    let mut writeback = super::pacing::Writeback::lazy(fresh);
    let step = page_size * u64::try_from(steps.pages_per_step.max(1)).unwrap_or(1);
    let mut copied = 0u64;
    loop {
        if steps.cancel.is_some_and(|c| c.load(Ordering::Acquire)) {
            return Err(Error::Cancelled { what: "restore" });
        }
        let n = std::io::copy(&mut (&mut from).take(step), &mut to).map_err(io)?;
        if n == 0 {
            break;
        }
        copied += n;
        writeback.advance_lazy(false);
        let done = u32::try_from(copied / page_size).unwrap_or(u32::MAX);
        let total = u32::try_from(page_count).unwrap_or(u32::MAX);
        (steps.progress)(Progress {
            remaining: total.saturating_sub(done),
            page_count: total,
        });
    }
    Ok(page_count)
}

/// Copies the backup to `fresh` and makes it the restored store: the new epoch, the store's
/// device identity, WAL mode; synced. Returns its page count. Opening it with the store's
/// key proves the key.
fn make_fresh(
    inner: &Inner,
    source: &Path,
    fresh: &Path,
    identity: &Kept,
    epoch: &str,
    steps: &mut Steps<'_>,
) -> Result<u64> {
    let db = inner.config.path();
    remove_fresh(fresh);
    let page_count = copy_in_steps(source, fresh, steps)?;
    let mut config = inner.config.clone();
    config.path = fresh.to_path_buf();
    config.read_only = false;
    let conn = connection::open(&config, Role::Writer)?;
    let sql_err = |e| Error::from_sqlite(e, fresh);
    crate::changes::mark::after_replace(&conn, db, inner.sync()?, epoch)?;
    crate::changes::identity::restore_kept(&conn, identity, db)?;
    // The last connection folds its WAL into the file and removes it.
    conn.close().map_err(|(_, e)| sql_err(e))?;
    std::fs::File::open(fresh)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", fresh, e))?;
    Ok(page_count)
}

/// Raises the mark of the new file `fresh` to `mark` (the old database's), synced.
fn raise_mark(inner: &Inner, fresh: &Path, mark: u64) -> Result<()> {
    let mut config = inner.config.clone();
    config.path = fresh.to_path_buf();
    config.read_only = false;
    let conn = connection::open(&config, Role::Writer)?;
    crate::changes::mark::raise_stored_mark(&conn, fresh, mark)?;
    conn.close()
        .map_err(|(_, e)| Error::from_sqlite(e, fresh))?;
    std::fs::File::open(fresh)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("syncing", fresh, e))
}

/// A new writer connection in place of one whose bid for the file's exclusive lock was
/// refused: the refused switch out of WAL can leave that connection holding the database
/// file's EXCLUSIVE lock (taken under `locking_mode=EXCLUSIVE` before the switch failed), which
/// neither NORMAL mode nor a read gives back in WAL mode — every other connection, the copying
/// restore's `pre-restore` snapshot among them, would wait for it until its busy timeout. A
/// closed connection holds no lock.
fn reopen(inner: &Inner, slot: &mut Option<Writer>, checkpoints: &Checkpointer) -> Result<()> {
    drop(slot.take());
    *slot = Some(Writer::open(&inner.config, &inner.layers, checkpoints)?);
    Ok(())
}

/// The store's own readers and checkpoint connection closed, [`take_exclusive`], and no other
/// process with the file open (a program's connection that has not read it holds no lock).
fn alone(
    inner: &Inner,
    checkpoints: &Checkpointer,
    writer: &Writer,
    busy: Duration,
) -> std::result::Result<(), String> {
    checkpoints.release_connection();
    inner.readers.clear();
    if !take_exclusive(&writer.conn, busy) {
        return Err("another connection holds the store".into());
    }
    nobody_else_has(inner.config.path()).inspect_err(|_| give_back_wal(&writer.conn, busy))
}

/// Puts the old file (held by the writer, linked in the backup folder) back as the database
/// over the new one, which nobody had read: one rename. A kill before it leaves the swap
/// done, and the journal finishes it (the new database, the old one as `pre-restore`); after
/// it, the journal names a link that is gone, and the next open drops it (the old database).
fn undo(db: &Path, journal: &Path, linked: &Path) -> Result<()> {
    std::fs::rename(linked, db).map_err(|e| Error::io("putting the replaced file back", db, e))?;
    for dir in [parent(db), parent(linked)] {
        if let Err(e) = sync_dir(dir) {
            tracing::warn!(%e, "a folder could not be synced after putting the database back");
        }
    }
    let _ = std::fs::remove_file(journal);
    let _ = sync_dir(parent(db));
    Ok(())
}

/// Switches the database out of WAL mode holding its exclusive lock: possible only when no
/// other connection has it open. False (and nothing changed) otherwise.
fn take_exclusive(conn: &rusqlite::Connection, busy: Duration) -> bool {
    let _ = conn.busy_timeout(Duration::ZERO);
    let alone = conn.execute_batch("PRAGMA locking_mode=EXCLUSIVE").is_ok()
        && conn
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get::<_, String>(0))
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("delete"));
    if !alone {
        let _ = conn.execute_batch("PRAGMA locking_mode=NORMAL");
    }
    let _ = conn.busy_timeout(busy);
    alone
}

/// Undoes [`take_exclusive`]: WAL mode, normal locking.
fn give_back_wal(conn: &rusqlite::Connection, busy: Duration) {
    let back = conn
        .execute_batch("PRAGMA locking_mode=NORMAL")
        .and_then(|()| conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)));
    if let Err(e) = back {
        tracing::warn!(%e, "could not switch the database back to WAL after a refused swap");
    }
    let _ = conn.busy_timeout(busy);
}

struct Linked {
    journal: Journal,
    earlier: Option<PathBuf>,
}

/// `PRAGMA data_version`: changes when another connection commits.
fn data_version(conn: &rusqlite::Connection) -> Option<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok()
}

/// `quick_check` of the database: what a backup of it passes before its manifest is written.
fn sound(conn: &rusqlite::Connection) -> bool {
    let verdict: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA quick_check(1)")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    match verdict {
        Ok(v) if v == ["ok"] => true,
        other => {
            tracing::info!(?other, "{DAMAGED}");
            false
        }
    }
}

/// Describes the old database (held exclusively by `conn`, checked) and links it into the
/// backup folder under a temporary name; why not when it cannot be linked.
fn link_old(
    inner: &Inner,
    conn: &rusqlite::Connection,
    dir: &Path,
) -> Result<std::result::Result<Linked, String>> {
    let db = inner.config.path();
    let sql_err = |e| Error::from_sqlite(e, db);
    let created_at_ms = naming::now_ms();
    let manifest = Manifest {
        format: manifest::FORMAT,
        name: PRE_RESTORE.to_owned(),
        created_at_ms,
        created: naming::rfc3339(created_at_ms),
        source: db.display().to_string(),
        store_id: meta::get(conn, "store_id")
            .map_err(sql_err)?
            .unwrap_or_default(),
        kind: kind_name(inner.config.kind).to_owned(),
        user_version: conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?,
        page_size: super::page_size(conn).map_err(sql_err)?,
        page_count: conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .map_err(sql_err)?
            .try_into()
            .unwrap_or(0),
        file_size: 0,
        checksum: String::new(),
        file_mtime_ns: None,
        schema_hash: manifest::schema_hash(conn, db)?,
        encrypted: inner.config.key.is_some(),
        store_salt: match inner.config.key {
            Some(_) => conn
                .query_row("PRAGMA cipher_salt", [], |r| r.get::<_, String>(0))
                .ok(),
            None => None,
        },
        automatic: true,
        peerlite_version: env!("CARGO_PKG_VERSION").to_owned(),
        checked: Some(CHECKED.to_owned()),
    };
    let earlier = super::keep_pre_restore(dir)?;
    let linked = naming::unique_tmp_path(&dir.join(PRE_RESTORE));
    if let Err(e) = std::fs::hard_link(db, &linked) {
        return Ok(Err(format!(
            "the database cannot be linked into the backup folder: {e}"
        )));
    }
    sync_dir(dir)?;
    Ok(Ok(Linked {
        journal: Journal { linked, manifest },
        earlier,
    }))
}

/// Step 5's second half: the old file, no longer the database, checksummed and installed as
/// `pre-restore`; then the journal goes. No connection of this process holds the old file
/// any more, so a descriptor of our own on it may be closed.
fn finish(journal_file: &Path, journal: Journal) -> Result<PathBuf> {
    let Journal {
        linked,
        mut manifest,
    } = journal;
    let target = linked.parent().unwrap_or(Path::new(".")).join(PRE_RESTORE);
    let (checksum, size) = manifest::checksum_file(&linked)?;
    manifest.checksum = checksum;
    manifest.file_size = size;
    manifest.file_mtime_ns = std::fs::metadata(&linked)
        .ok()
        .as_ref()
        .and_then(manifest::mtime_ns);
    let manifest_tmp = naming::unique_tmp_path(&naming::manifest_path(&target));
    manifest.write(&manifest_tmp)?;
    if let Err(e) = super::install(&linked, &target, &manifest_tmp) {
        let _ = std::fs::remove_file(&manifest_tmp);
        return Err(e);
    }
    let _ = std::fs::remove_file(journal_file);
    if let Some(dir) = journal_file.parent() {
        let _ = sync_dir(dir);
    }
    Ok(target)
}

/// What a swap killed in the middle left beside the database `db`, finished: before its
/// rename, the copy and the link are removed (the old database stays, and the next writable
/// open puts it back in WAL mode); after it, the old file is installed as `pre-restore`.
/// Only swaps of processes that are gone are touched.
pub(crate) fn finish_interrupted(db: &Path) {
    let dir = parent(db);
    let Some(name) = db.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(name)) else {
            continue;
        };
        let Some((pid, what)) = rest
            .strip_prefix('.')
            .and_then(|r| r.split_once('.'))
            .and_then(|(pid, what)| Some((pid.parse::<u32>().ok()?, what)))
        else {
            continue;
        };
        if pid == std::process::id() || super::catalog::process_alive(pid, &entry.path()) {
            continue;
        }
        match what {
            "swap" => finish_journal(db, &entry.path()),
            "restoring" => remove_fresh(&entry.path()),
            _ => {}
        }
    }
}

fn finish_journal(db: &Path, journal_file: &Path) {
    let journal: Option<Journal> = std::fs::read(journal_file)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let Some(journal) = journal else {
        // Written whole before the swap (synced); unreadable only when cut by a crash of
        // the machine before the swap: nothing to finish.
        let _ = std::fs::remove_file(journal_file);
        return;
    };
    let linked_id = file_id(&journal.linked);
    if linked_id.is_none() {
        let _ = std::fs::remove_file(journal_file);
        return;
    }
    if linked_id == file_id(db) {
        // Killed before the swap: the link is the live database. Take it away.
        tracing::info!(
            ?db,
            "a restore was interrupted before its swap; the database is unchanged"
        );
        let _ = std::fs::remove_file(&journal.linked);
        let _ = std::fs::remove_file(journal_file);
        return;
    }
    tracing::info!(
        ?db,
        "a restore was interrupted after its swap; keeping the replaced data as pre-restore"
    );
    if let Err(e) = finish(journal_file, journal) {
        tracing::warn!(%e, "could not finish keeping the data an interrupted restore replaced");
    }
}
