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

/// The store's configuration (device, key, clock) for another file of it that a reset opens
/// on the side — its seed, the copy of the replaced data: no backups of its own, no
/// migration, no rebuild.
fn beside(store: &RdbStore, path: PathBuf) -> crate::StoreConfig {
    let mut config = store.config().clone();
    config.path = path;
    config.backup_dir = None;
    config.auto_backup = None;
    config.backup_before_migration = false;
    config.allow_rebuild = false;
    config.version = None;
    config
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
    let mut config = beside(store, seed_path);
    config.backup_dir = Some(dir.join("backups"));
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
        for ledger in ["peerlite_watermarks", "peerlite_acks", "peerlite_stamps"] {
            if table_exists(conn, ledger).map_err(sql_err)? {
                script.push_str(&format!("DELETE FROM {ledger};\n"));
            }
        }
        script.push_str("DELETE FROM peerlite_meta WHERE key LIKE 'purged\\_seq:%' ESCAPE '\\';\n");
        tx.execute_script_own(&script)?;
        crate::sync::heard::forget_all(conn).map_err(sql_err)?;
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
    /// This device's own rows that left it (a peer acknowledged them) and that the seed's
    /// peer does not have: deleted there, or held only by another peer.
    pub left: u64,
}

impl Outcome {
    pub(super) fn discarded(n: u64) -> Outcome {
        Outcome {
            discarded: n,
            ..Outcome::default()
        }
    }
}

/// The unsynced local changes of the database: per distributed table, every change after
/// what any peer acknowledged, read from the store as the reset finishes.
pub(super) struct Replay {
    source: RdbStore,
    tables: Vec<Unsynced>,
    /// The store holds every row of its own as it last wrote it
    /// ([`crate::sync::heard::is_whole`]).
    pub(super) whole: bool,
}

/// Where a table's unsynced changes begin.
struct Unsynced {
    table: String,
    /// The highest change number any peer acknowledged.
    acked: u64,
    /// The newest own insert or delete any peer acknowledged (see
    /// [`watermark::acked_stamp`]).
    acked_stamp: u64,
    /// A device-collaboration table of a whole store: only this device writes its rows
    /// there, and the store holds each as it last wrote it.
    collaboration: bool,
}

impl Replay {
    /// The changes of the live store itself, read as the reset finishes: commits another
    /// process made while the seed was pulled are replayed too (the pre-reset backup would
    /// miss them, and the swap would drop them).
    pub(super) fn open(store: &RdbStore) -> Result<Replay> {
        let source = store.clone();
        let path = source.path().to_path_buf();
        let (tables, whole) = source.inner.read(|conn| {
            let sql_err = |e| Error::from_sqlite(e, &path);
            let epoch = crate::store::meta::get(conn, "epoch")
                .map_err(sql_err)?
                .unwrap_or_default();
            let whole = crate::sync::heard::is_whole(conn, &epoch).map_err(sql_err)?;
            let tables = registry::load_all(conn)
                .map_err(sql_err)?
                .into_iter()
                .filter(|m| m.base.is_none())
                .map(|m| {
                    // A change any peer acknowledged has left this device: its fate (kept,
                    // overwritten, deleted) travels with that peer's state, so replaying it
                    // could only bring back a row someone deleted and the peer forgot.
                    let mut acked = 0u64;
                    for device in watermark::devices(conn).map_err(sql_err)? {
                        acked = acked.max(
                            watermark::get(conn, Ledger::Acknowledged, &device, &m.name, 0, &epoch)
                                .map_err(sql_err)?,
                        );
                    }
                    let acked_stamp =
                        watermark::acked_stamp(conn, &m.name, &epoch).map_err(sql_err)?;
                    Ok(Unsynced {
                        collaboration: whole
                            && m.mode == registry::DistributedTableType::DeviceCollaboration,
                        table: m.name,
                        acked,
                        acked_stamp,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((tables, whole))
        })?;
        Ok(Replay {
            source,
            tables,
            whole,
        })
    }

    /// How many unsynced changes there are.
    pub(super) fn pending(&self) -> Result<u64> {
        Ok(self.changes()?.len() as u64)
    }

    /// The unsynced changes as `peerlite changes` lists them: rows changed after what the
    /// peer acknowledged whose insert or delete, or a column written since, was this
    /// device's (rows relayed from others are not this device's to recover).
    pub(super) fn changes(&self) -> Result<Vec<super::UnsyncedChange>> {
        let me = self.source.device_id().to_owned();
        let metas = self.source.distributed_tables()?;
        let mut out = Vec::new();
        for t in &self.tables {
            let since = i64::try_from(t.acked).unwrap_or(i64::MAX);
            let meta = metas.iter().find(|m| m.name == t.table);
            for change in self.source.changes(Some(&t.table), since)? {
                if change.origin != me && !change.columns.iter().any(|(_, _, d)| *d == me) {
                    continue;
                }
                let values = match meta {
                    Some(m) if !change.tombstone => row_values(&self.source, m, &change.key)?,
                    _ => Vec::new(),
                };
                out.push(super::UnsyncedChange { change, values });
            }
        }
        Ok(out)
    }

    /// Replays the unsynced changes on `seed`, batch by batch, as the merge applies any
    /// peer's rows: with their own timestamps and writers.
    pub(super) fn onto(&self, seed: &RdbStore, peer: &str) -> Result<Outcome> {
        // From the start of the log: see `own_changes`.
        self.onto_after(seed, peer, 0)
    }

    /// [`onto`](Self::onto) for the changes numbered after `after` only.
    fn onto_after(&self, seed: &RdbStore, peer: &str, after: u64) -> Result<Outcome> {
        let surface = self.source.sync_surface();
        let mut outcome = Outcome::default();
        for t in &self.tables {
            let (table, mut at) = (&t.table, after);
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
                let (batch, left, revives) =
                    own_changes(seed, batch, t.acked_stamp, t.collaboration)?;
                outcome.left += left;
                let applied = seed.apply_replayed(&batch)?;
                if revives && applied.changed > 0 {
                    // The seed's watermarks of devices other than the peer were taken from the
                    // peer (`relayed-watermarks`): "holds what they sent". A replayed insert
                    // of a row the peer lacks may be one those devices deleted (and the peer
                    // purged): forget them, so their streams come again, deletes included.
                    seed.forget_relayed_watermarks(table, peer)?;
                }
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

/// The rows of `batch` that are this device's to recover, with its own changes from the
/// start of its log (not only those no peer acknowledged: a change one peer acknowledged may
/// be missing from the peer the seed came from, and that peer's state must not undo it):
///
/// - its deletes: merged by their timestamps, they remove only what they are newer than;
/// - its inserts and column edits of rows the seed holds: merged per column, as sync would;
/// - of rows the seed lacks, only its inserts no peer acknowledged (newer than
///   `acked_stamp`). A row the seed lacks that another device inserted, or that this one
///   inserted in a change a peer acknowledged, was deleted where it went — a delete beats an
///   edit — and its tombstone may be purged: replaying it would bring it back.
///
/// In a device-collaboration table of a whole store (`collaboration`; see
/// [`crate::sync::heard::is_whole`]) only this device writes its rows, and the store holds
/// each as it last wrote it: nobody else can have deleted one, so every row of its own is
/// kept, and none is left to peers — which is what lets the finished reset ignore relays of
/// that database's rows ([`crate::sync::heard::settle_own`]). (A store put back from a
/// backup may hold rows it deleted after the backup: those follow the rules below.)
///
/// Also returns how many of this device's own rows it leaves out because the seed lacks them
/// although a peer acknowledged them ([`Outcome::left`]), and whether it keeps an insert of a
/// row the seed lacks.
fn own_changes(
    seed: &RdbStore,
    mut batch: crate::sync::Batch,
    acked_stamp: u64,
    collaboration: bool,
) -> Result<(crate::sync::Batch, u64, bool)> {
    let me = seed.device_id();
    let Some(mine) = batch.devices.iter().position(|d| d == me) else {
        batch.rows.clear();
        return Ok((batch, 0, false));
    };
    let mine = u32::try_from(mine).unwrap_or(u32::MAX);
    let own = |row: &crate::sync::RowChange| {
        row.origin == mine || row.regs.iter().any(|r| r.origin == mine)
    };
    if collaboration {
        batch.rows.retain(own);
        return Ok((batch, 0, false));
    }
    let undecided: Vec<crate::Value> = batch
        .rows
        .iter()
        .filter(|r| own(r) && !r.tomb)
        .map(|r| r.ident.clone())
        .collect();
    let present = present_in(seed, &batch.table, &undecided)?;
    let mut left = 0u64;
    batch.rows.retain(|row| {
        let kept = own(row)
            && (row.origin == mine && (row.tomb || row.hlc > acked_stamp)
                || present.contains(&row.ident));
        if !kept && row.origin == mine && !row.tomb {
            left += 1;
        }
        kept
    });
    let revives = batch
        .rows
        .iter()
        .any(|r| !r.tomb && !present.contains(&r.ident));
    Ok((batch, left, revives))
}

/// Which of `idents` the seed's `table` holds (looked up a few hundred at a time).
fn present_in(seed: &RdbStore, table: &str, idents: &[crate::Value]) -> Result<Vec<crate::Value>> {
    let Some(meta) = seed
        .distributed_tables()?
        .into_iter()
        .find(|m| m.name == table && m.base.is_none())
    else {
        return Ok(Vec::new());
    };
    let id = meta.identity_sql();
    let mut found = Vec::new();
    for chunk in idents.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT {id} FROM {} WHERE {id} IN ({marks})",
            quote_ident(&meta.name)
        );
        let result = seed.query_sql(&sql, chunk)?;
        found.extend(result.rows()?.filter_map(|r| r.first().cloned()));
    }
    Ok(found)
}

/// The synced columns' values of row `key` of `meta`'s table as the store holds it now
/// (empty when it holds no such row).
fn row_values(
    store: &RdbStore,
    meta: &crate::changes::TableMeta,
    key: &crate::Value,
) -> Result<Vec<(String, crate::Value)>> {
    let columns: Vec<String> = meta.columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = ?",
        columns.join(", "),
        quote_ident(&meta.name),
        meta.identity_sql()
    );
    let result = store.query_sql(&sql, std::slice::from_ref(key))?;
    let row = result.rows()?.next();
    let values: Vec<(String, crate::Value)> = row
        .map(|values| {
            meta.columns
                .iter()
                .cloned()
                .zip(values.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    Ok(if meta.name == crate::kv::KV_TABLE {
        typed_entry(values)
    } else {
        values
    })
}

/// A key-value entry's stored columns as the user wrote it: the value in its own type, and
/// the type's name instead of its stored number.
fn typed_entry(values: Vec<(String, crate::Value)>) -> Vec<(String, crate::Value)> {
    let find = |name: &str| values.iter().find(|(c, _)| c == name).map(|(_, v)| v);
    let typed = match (find("value"), find("type")) {
        (Some(value), Some(crate::Value::Integer(tag))) => {
            crate::kv::KvValue::from_sql(value.as_value_ref(), *tag)
        }
        _ => None,
    };
    match typed {
        Some(kv) => vec![
            ("value".to_owned(), kv.to_value()),
            (
                "type".to_owned(),
                crate::Value::Text(kv.type_name().to_owned()),
            ),
        ],
        None => values,
    }
}

/// Commits another process made to the store after the reset read its changes (numbered past
/// `through`) and before the seed replaced it: they are in the copy the restore kept of the
/// replaced data, and are replayed onto the store now, as the reset replayed the others.
pub(super) fn catch_up(
    store: &RdbStore,
    replaced: &Path,
    through: u64,
    peer: &str,
) -> Result<Outcome> {
    let mut config = beside(store, replaced.to_path_buf());
    config.read_only = true;
    let copy = RdbStore::open(config)?;
    let outcome = Replay::open(&copy)?.onto_after(store, peer, through);
    copy.close()?;
    outcome
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
    seed.restore_with(RestoreRequest::new(copy.to_string_lossy().into_owned()).within_reset())
        .map(|_| ())
}

/// Puts the seed in place of the database: a verified backup of it, restored over the
/// database (atomic; the replaced data kept as `pre-restore`; a new epoch).
/// Returns the copy the restore kept of the replaced data (`pre-restore`), when it could.
pub(super) fn install(store: &RdbStore, seed: &RdbStore, dir: &Path) -> Result<Option<PathBuf>> {
    let at = dir.join("final");
    std::fs::create_dir_all(&at).map_err(|e| Error::io("creating", &at, e))?;
    let file = seed.path().file_name().unwrap_or_default();
    let info = seed.backup_with(BackupRequest::at_path(at.join(file))?)?;
    seed.close()?;
    super::restore_from(store, &info.path)
}

/// Marks, in the seed, this device's own rows of the replaced database (`store`'s epoch) as
/// settled ([`crate::sync::heard::settle_own`]): the recovery replayed every one of them — and
/// those of the databases the replaced one had settled, which it held.
pub(super) fn settle_own(store: &RdbStore, seed: &RdbStore) -> Result<()> {
    let path = store.path().to_path_buf();
    let epochs = store.inner.read(|conn| {
        let sql_err = |e| Error::from_sqlite(e, &path);
        let mut epochs = crate::sync::heard::settled(conn).map_err(sql_err)?;
        epochs.extend(crate::store::meta::get(conn, "epoch").map_err(sql_err)?);
        Ok(epochs)
    })?;
    let seed_path = seed.path().to_path_buf();
    seed.transaction(|tx| {
        let conn = tx.conn()?;
        for epoch in &epochs {
            crate::sync::heard::settle_own(conn, epoch)
                .map_err(|e| Error::from_sqlite(e, &seed_path))?;
        }
        Ok(())
    })
}

/// After a reset that recovered from a whole store installed the seed: the store, under its
/// new epoch, is whole too ([`crate::sync::heard::mark_whole`]).
pub(super) fn mark_whole(store: &RdbStore) -> Result<()> {
    let path = store.path().to_path_buf();
    store.transaction(|tx| {
        let conn = tx.conn()?;
        let sql_err = |e| Error::from_sqlite(e, &path);
        if let Some(epoch) = crate::store::meta::get(conn, "epoch").map_err(sql_err)? {
            crate::sync::heard::mark_whole(conn, &epoch).map_err(sql_err)?;
        }
        Ok(())
    })
}
