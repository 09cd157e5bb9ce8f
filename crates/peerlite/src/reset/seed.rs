//! The seed of a client reset: a copy of the store, in a folder beside it, whose distributed
//! tables are emptied for a pull of the peer's full state; the replay of the unsynced local
//! changes onto it; and its installation in place of the database.

use std::path::{Path, PathBuf};

use crate::backup::{BackupRequest, RestoreRequest};
use crate::changes::registry;
use crate::error::{Error, Result};
use crate::store::RdbStore;
use crate::store::schema::{quote_ident, table_exists};
use crate::sync::BatchRequest;
use crate::sync::watermark::{self, Ledger};

/// Rows replayed per batch.
const REPLAY_ROWS: usize = 1000;

/// `.NAME.reset-seed/` beside the database.
pub(super) fn dir_of(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    db.with_file_name(format!(".{name}.reset-seed"))
}

/// Removes a seed folder (a missing one is fine).
pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing the reset seed", dir, e)),
    }
}

/// Copies the verified `backup` into a fresh seed folder, opens it as this device and empties
/// its distributed tables, watermarks and acknowledgements; it gets an epoch of its own.
pub(super) fn prepare(store: &RdbStore, backup: &Path) -> Result<(RdbStore, PathBuf)> {
    let dir = dir_of(store.path());
    remove_dir(&dir)?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let file = store.path().file_name().unwrap_or_default();
    let seed_path = dir.join(file);
    std::fs::copy(backup, &seed_path).map_err(|e| Error::io("copying", &seed_path, e))?;
    let mut config = store.config().clone();
    config.path = seed_path;
    config.backup_dir = Some(dir.join("backups"));
    config.auto_backup = None;
    config.backup_before_migration = false;
    config.allow_rebuild = false;
    config.version = None;
    let seed = RdbStore::open(config)?;
    empty(&seed)?;
    Ok((seed, dir))
}

/// Empties every distributed table (local and device tables) with its clock, and forgets
/// every watermark and acknowledgement: the pull that follows starts from nothing.
fn empty(seed: &RdbStore) -> Result<()> {
    let path = seed.path().to_path_buf();
    seed.transaction(|tx| {
        let sql_err = |e| Error::from_sqlite(e, &path);
        let conn = tx.conn()?;
        let metas = registry::load_all(conn).map_err(sql_err)?;
        let sync = seed.inner.sync()?;
        let _paused = sync.pause_capture();
        let mut script = String::new();
        for m in &metas {
            if table_exists(conn, &m.name).map_err(sql_err)? {
                script.push_str(&format!("DELETE FROM {};\n", quote_ident(&m.name)));
            }
            if table_exists(conn, &m.clock()).map_err(sql_err)? {
                script.push_str(&format!("DELETE FROM {};\n", m.clock()));
            }
        }
        for ledger in ["peerlite_watermarks", "peerlite_acks"] {
            if table_exists(conn, ledger).map_err(sql_err)? {
                script.push_str(&format!("DELETE FROM {ledger};\n"));
            }
        }
        script.push_str("DELETE FROM peerlite_meta WHERE key LIKE 'purged\\_seq:%' ESCAPE '\\';\n");
        tx.execute_script_own(&script)?;
        crate::changes::mark::renew_epoch(conn, &path, sync)?;
        Ok(())
    })
}

/// What replaying (or dropping) the unsynced changes did.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Outcome {
    pub recovered: u64,
    pub discarded: u64,
    pub conflicts: u64,
}

impl Outcome {
    pub(super) fn discarded(n: u64) -> Outcome {
        Outcome {
            discarded: n,
            ..Outcome::default()
        }
    }
}

/// The unsynced local changes of the database as it was before the reset: per distributed
/// table, every change after what the peer acknowledged, read from the pre-reset backup.
pub(super) struct Replay {
    backup: RdbStore,
    tables: Vec<(String, u64)>,
}

impl Replay {
    pub(super) fn open(backup: &Path, store: &RdbStore, peer: &str) -> Result<Replay> {
        let mut config = store.config().clone();
        config.path = backup.to_path_buf();
        config.read_only = true;
        config.allow_rebuild = false;
        config.version = None;
        let backup = RdbStore::open(config)?;
        let path = backup.path().to_path_buf();
        let tables = backup.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, &path);
            let epoch = crate::store::meta::get(conn, "epoch")
                .map_err(sql_err)?
                .unwrap_or_default();
            registry::load_all(conn)
                .map_err(sql_err)?
                .into_iter()
                .filter(|m| m.base.is_none())
                .map(|m| {
                    let acked =
                        watermark::get(conn, Ledger::Acknowledged, peer, &m.name, 0, &epoch)
                            .map_err(sql_err)?;
                    Ok((m.name, acked))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Replay { backup, tables })
    }

    /// Rows changed after what the peer acknowledged.
    pub(super) fn pending(&self) -> Result<u64> {
        let path = self.backup.path().to_path_buf();
        self.backup.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, &path);
            let metas = registry::load_all(conn).map_err(sql_err)?;
            let mut n = 0u64;
            for (table, since) in &self.tables {
                for m in metas.iter().filter(|m| m.logical() == table) {
                    if table_exists(conn, &m.clock()).map_err(sql_err)? {
                        let c: i64 = conn
                            .query_row(
                                &format!("SELECT count(*) FROM {} WHERE seq > ?1", m.clock()),
                                [*since as i64],
                                |r| r.get(0),
                            )
                            .map_err(sql_err)?;
                        n += c.max(0) as u64;
                    }
                }
            }
            Ok(n)
        })
    }

    /// Replays the unsynced changes on `seed`, batch by batch, as the merge applies any
    /// peer's rows: with their own timestamps and writers.
    pub(super) fn onto(&self, seed: &RdbStore) -> Result<Outcome> {
        let surface = self.backup.sync_surface();
        let mut outcome = Outcome::default();
        for (table, since) in &self.tables {
            let mut at = *since;
            // Bounded: every batch moves `at` forward, or ends the table.
            loop {
                let batch = surface.next_batch(BatchRequest {
                    peer: "",
                    peer_epoch: "",
                    table,
                    filter: None,
                    since: at,
                    limit: REPLAY_ROWS,
                })?;
                if batch.rows.is_empty() && batch.last <= at {
                    break;
                }
                let applied = seed.apply_replayed(&batch)?;
                outcome.recovered += applied.changed;
                outcome.conflicts += applied.conflicts;
                if batch.last <= at {
                    break;
                }
                at = batch.last;
            }
        }
        Ok(outcome)
    }
}

/// A verified copy of the seed as it is now, to go back to when a recovery fails.
pub(super) fn checkpoint_copy(seed: &RdbStore, dir: &Path) -> Result<PathBuf> {
    let at = dir.join("pulled");
    std::fs::create_dir_all(&at).map_err(|e| Error::io("creating", &at, e))?;
    let file = seed.path().file_name().unwrap_or_default();
    let info = seed.backup_with(BackupRequest::at_path(at.join(file))?)?;
    Ok(info.path)
}

/// Puts the seed back as it was at `copy`.
pub(super) fn roll_back_to(seed: &RdbStore, copy: &Path) -> Result<()> {
    seed.restore_with(RestoreRequest::new(copy.to_string_lossy().into_owned()))
        .map(|_| ())
}

/// Puts the seed in place of the database: a verified backup of it, restored over the
/// database (atomic; the replaced data kept as `pre-restore`; a new epoch).
pub(super) fn install(store: &RdbStore, seed: &RdbStore, dir: &Path) -> Result<()> {
    let at = dir.join("final");
    std::fs::create_dir_all(&at).map_err(|e| Error::io("creating", &at, e))?;
    let file = seed.path().file_name().unwrap_or_default();
    let info = seed.backup_with(BackupRequest::at_path(at.join(file))?)?;
    seed.close()?;
    super::restore_from(store, &info.path)
}
