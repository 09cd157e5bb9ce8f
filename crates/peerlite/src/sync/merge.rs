//! Applying a peer's row states: a state-based merge, so every delivery order converges.
//!
//! A row's state is its existence register E (the last insert or delete: timestamp, device,
//! alive) and one register per column (timestamp, device, value). Merging two states takes
//! the greater register of each, ordered by (hybrid logical clock, device id): commutative,
//! associative and idempotent. An insert writes every column, so it resets them; an update
//! writes only columns, so it can never bring back a row whose delete is the newest existence
//! event (delete wins over concurrent updates). While a row is deleted, the values of columns
//! written after its delete are kept aside ("pending"), because a later insert may lose to
//! them column by column.
//!
//! A row that breaks a local constraint (another UNIQUE column, say), or holds a value the
//! table here cannot store (a text key for an INTEGER PRIMARY KEY of a peer whose types the
//! handshake could not compare), is not applied: it is recorded in `peerlite_conflicts` (once,
//! however often the batch is delivered), counted in the sync result, and can be listed and
//! resolved — never dropped silently, and never a batch that fails on every session.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Statement};

use super::ChangeKind;
use super::extract::{pending_ddl, pending_table};
use super::message::{Batch, RowChange};
use crate::changes::device_table_name;
use crate::changes::registers::{self, ColumnRegister};
use crate::changes::registry::{self, DistributedTableType, TableMeta};
use crate::changes::state::{LOCAL, SyncState};
use crate::changes::triggers;
use crate::error::{Error, Result};
use crate::store::Transaction;
use crate::store::schema::quote_ident;
use crate::value::Value;

pub(crate) const CONFLICTS_DDL: &str = "CREATE TABLE IF NOT EXISTS peerlite_conflicts(
  id INTEGER PRIMARY KEY,
  tbl TEXT NOT NULL,
  ident,
  device TEXT NOT NULL,
  change BLOB NOT NULL,
  code INTEGER NOT NULL,
  message TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS peerlite_conflicts_once ON peerlite_conflicts(tbl, ident, device, change);";

/// What applying a batch did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Rows whose state changed here.
    pub changed: u64,
    /// Rows newly recorded as conflicts (one delivered again is not counted again).
    pub conflicts: u64,
    /// Every row that broke a constraint, recorded before or not: the state it would have had.
    pub clashes: Vec<Clash>,
    /// The tables and identities of the rows that changed visibly.
    pub keys: Vec<(String, Value)>,
    /// What happened to each of `keys`.
    pub kinds: Vec<ChangeKind>,
}

/// A register: (hlc, device index).
type Reg = (u64, i64);

/// A merged row that broke a local constraint: the state it would have had here.
#[derive(Debug, Clone)]
pub(crate) struct Clash {
    /// Its existence event: (hlc, device id).
    pub existence: (u64, String),
    /// Its synced columns' values, in the table's column order.
    pub values: Vec<Value>,
    /// What refused it here: SQLite's code and message.
    pub refused: (crate::error::SqliteCode, String),
}

struct Ctx<'a> {
    conn: &'a Connection,
    path: &'a std::path::Path,
    sync: &'a SyncState,
    names: &'a HashMap<i64, String>,
    /// This batch's statements. Prepared here, not in the connection's shared cache: those
    /// that write device tables are authorized only while sync applies rows
    /// (`store::writer`), and a caller must never get one of them from the cache.
    stmts: RefCell<HashMap<String, Statement<'a>>>,
    /// The statements every row runs, by (table id, statement kind, column mask): found
    /// without hashing their text.
    by_kind: RefCell<HashMap<(i64, SqlKind, u64), Statement<'a>>>,
    /// Whether a table's pending-values table may hold rows (by table id).
    pending_rows: RefCell<HashMap<i64, bool>>,
}

impl<'a> Ctx<'a> {
    fn sql_err(&self, e: rusqlite::Error) -> Error {
        Error::from_sqlite(e, self.path)
    }

    /// Runs `f` with the batch's statement of `kind` for `target` (and a column `mask`),
    /// prepared from `build()` on first use.
    fn with_kind<T>(
        &self,
        target: &TableMeta,
        kind: SqlKind,
        mask: u64,
        build: impl FnOnce() -> String,
        f: impl FnOnce(&mut Statement<'a>) -> Result<T>,
    ) -> Result<T> {
        let mut stmts = self.by_kind.borrow_mut();
        let key = (target.tid, kind, mask);
        let st = match stmts.get_mut(&key) {
            Some(st) => st,
            None => {
                let st = self.conn.prepare(&build()).map_err(|e| self.sql_err(e))?;
                stmts.entry(key).or_insert(st)
            }
        };
        f(st)
    }

    /// Runs the write of `kind` with `params`, returning the rows changed.
    fn run_kind(
        &self,
        target: &TableMeta,
        kind: SqlKind,
        mask: u64,
        build: impl FnOnce() -> String,
        params: &[Value],
    ) -> Result<usize> {
        self.with_kind(target, kind, mask, build, |st| {
            crate::store::read::bind(st, params, self.path)?;
            st.raw_execute().map_err(|e| self.sql_err(e))
        })
    }

    /// Runs `f` with the batch's prepared statement for `sql`.
    fn with<T>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut Statement<'a>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut stmts = self.stmts.borrow_mut();
        let st = match stmts.get_mut(sql) {
            Some(st) => st,
            None => {
                let st = self.conn.prepare(sql).map_err(|e| self.sql_err(e))?;
                stmts.entry(sql.to_owned()).or_insert(st)
            }
        };
        f(st).map_err(|e| self.sql_err(e))
    }

    /// Runs a write with `params`, returning the rows changed.
    fn run(&self, sql: &str, params: &[Value]) -> Result<usize> {
        let mut stmts = self.stmts.borrow_mut();
        let st = match stmts.get_mut(sql) {
            Some(st) => st,
            None => {
                let st = self.conn.prepare(sql).map_err(|e| self.sql_err(e))?;
                stmts.entry(sql.to_owned()).or_insert(st)
            }
        };
        crate::store::read::bind(st, params, self.path)?;
        st.raw_execute().map_err(|e| self.sql_err(e))
    }

    /// Whether `target`'s pending-values table may hold rows (asked once per batch).
    fn has_pending(&self, target: &TableMeta) -> Result<bool> {
        if let Some(known) = self.pending_rows.borrow().get(&target.tid) {
            return Ok(*known);
        }
        let sql = format!("SELECT EXISTS(SELECT 1 FROM {})", pending_table(target));
        let any: bool = self.with(&sql, |st| st.query_row([], |r| r.get(0)))?;
        self.pending_rows.borrow_mut().insert(target.tid, any);
        Ok(any)
    }

    /// Orders registers by timestamp, then device id (the same on every device).
    fn key(&self, reg: Reg) -> (u64, &str) {
        (reg.0, self.names.get(&reg.1).map_or("", String::as_str))
    }

    fn newer(&self, a: Reg, b: Reg) -> bool {
        self.key(a) > self.key(b)
    }
}

/// The statements merging a row runs, for [`Ctx::sql`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SqlKind {
    ClockRow,
    ClockWrite,
    Insert,
    Update,
}

/// One column's merged state.
enum Winner {
    /// Nobody has a value for it.
    None,
    /// The local value stands (in the table, or pending for a deleted row).
    Local(Reg),
    /// The remote value wins.
    Remote(Reg, Value),
}

/// Where a batch comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    /// The peer that sent it.
    pub device: &'a str,
    /// A first stream of the peer's own rows is under way (see [`super::heard::refreshing`]):
    /// its rows are marked as brought, even those that change nothing here.
    pub refresh: bool,
}

/// Applies `batch` (rows of `logical`) from `source` inside `tx`, with capture paused
/// (`None` for rows this store replays or resolves itself): in device collaboration, what a
/// device's rows come with from that device itself is remembered, and relays of them that can
/// only be stale are ignored (see [`heard`]).
///
/// [`heard`]: super::heard
pub(crate) fn apply_batch(
    tx: &Transaction<'_>,
    sync: &SyncState,
    logical: &TableMeta,
    batch: &Batch,
    source: Option<Source<'_>>,
) -> Result<Applied> {
    let sender = source.map(|s| s.device);
    let refresh = source.is_some_and(|s| s.refresh);
    let conn = tx.conn()?;
    let path = tx.inner().config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    conn.execute_batch(CONFLICTS_DDL).map_err(sql_err)?;
    registry::migrate(conn).map_err(sql_err)?;
    // Each writer keeps the epoch of the database that held its writes; this device's own
    // rows, relayed back, are its own whatever the epoch.
    let device_idx: Vec<i64> = batch
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let epoch = batch.epochs.get(i).map_or("", String::as_str);
            registry::writer_index(conn, d, epoch)
        })
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)?;
    let names: HashMap<i64, String> = registry::devices(conn)
        .map_err(sql_err)?
        .into_iter()
        .collect();
    // Device collaboration: the table of every device the batch carries rows of, made
    // before the rows are applied. This device's own rows merge into its own table: they
    // come back only to a database that lost them (re-created or restored) — otherwise its
    // own state is newer and they change nothing.
    let mut device_tables: HashMap<u32, TableMeta> = HashMap::new();
    if logical.mode == DistributedTableType::DeviceCollaboration {
        for row in &batch.rows {
            let local = device_idx.get(row.origin as usize) == Some(&LOCAL);
            if local {
                device_tables.insert(row.origin, logical.clone());
            }
            if device_tables.contains_key(&row.origin) {
                continue;
            }
            let device = batch
                .devices
                .get(row.origin as usize)
                .ok_or_else(|| protocol("row origin outside the batch's devices"))?;
            device_tables.insert(row.origin, ensure_device_table(tx, logical, device)?);
        }
    }
    let ctx = Ctx {
        conn,
        path,
        sync,
        names: &names,
        stmts: RefCell::new(HashMap::new()),
        by_kind: RefCell::new(HashMap::new()),
        pending_rows: RefCell::new(HashMap::new()),
    };
    let collaboration = logical.mode == DistributedTableType::DeviceCollaboration;
    // Per origin (batch index): the newest own timestamp heard from it directly, when the
    // batch relays its rows (a filtered stream carries only some rows: it proves nothing).
    let epoch_of = |i: usize| batch.epochs.get(i).map_or("", String::as_str);
    let mut heard_before: HashMap<u32, u64> = HashMap::new();
    if let Some(sender) = sender {
        for (i, d) in batch.devices.iter().enumerate() {
            if d != sender && device_idx.get(i) != Some(&LOCAL) {
                let h = super::heard::get(conn, d, &logical.name, epoch_of(i)).map_err(sql_err)?;
                heard_before.insert(u32::try_from(i).unwrap_or(u32::MAX), h);
            }
        }
    }
    // This device's own rows of a database a reset replaced, relayed back by a peer: that
    // reset accounted for every one of them, so a relay can only be stale (see
    // [`super::heard::settle_own`]). Replays (no sender) are the reset's own.
    let mut settled: Vec<u32> = Vec::new();
    if collaboration && sender.is_some() {
        for (i, idx) in device_idx.iter().enumerate() {
            if *idx == LOCAL && super::heard::own_settled(conn, epoch_of(i)).map_err(sql_err)? {
                settled.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
    }
    let sender_idx = sender.and_then(|s| batch.devices.iter().position(|d| d == s));
    let mut heard_now = 0u64;
    let mut applied = Applied::default();
    for row in &batch.rows {
        let origin = *device_idx
            .get(row.origin as usize)
            .ok_or_else(|| protocol("row origin outside the batch's devices"))?;
        let newest = row
            .regs
            .iter()
            .map(|r| r.hlc)
            .chain([row.hlc])
            .max()
            .unwrap_or(0);
        sync.receive(newest);
        if settled.contains(&row.origin) {
            disown(&ctx, logical, row)?;
            continue;
        }
        // A state only its writer wrote (always so in device collaboration): what the writer
        // sent here itself up to `heard` holds it, or a newer state of the row, or none
        // because the row is deleted (see [`super::heard`]).
        if row.regs.iter().all(|g| g.origin == row.origin) {
            if sender_idx == Some(row.origin as usize) {
                heard_now = heard_now.max(newest);
            } else if heard_before
                .get(&row.origin)
                .is_some_and(|heard| newest <= *heard)
            {
                continue;
            }
        }
        let target: &TableMeta = match logical.mode {
            DistributedTableType::SingleVersion => logical,
            DistributedTableType::DeviceCollaboration => match device_tables.get(&row.origin) {
                Some(m) => m,
                None => continue,
            },
        };
        match merge_row(&ctx, target, row, batch, &device_idx, origin)? {
            Outcome::Unchanged if refresh && sender_idx == Some(row.origin as usize) => {
                // Brought by the refresh: renumbered, so its end keeps it.
                ctx.run(
                    &format!(
                        "UPDATE {} SET seq = peerlite_seq() WHERE ident = ?1",
                        target.clock()
                    ),
                    std::slice::from_ref(&row.ident),
                )?;
            }
            Outcome::Unchanged => {}
            Outcome::Changed(kind) => {
                applied.changed += 1;
                if let Some(kind) = kind {
                    applied.keys.push((target.name.clone(), row.ident.clone()));
                    applied.kinds.push(kind);
                }
            }
            Outcome::Conflict(err, clash) => {
                if record_conflict(&ctx, target, row, batch, &err)? {
                    applied.conflicts += 1;
                }
                applied.clashes.push(clash);
            }
        }
    }
    if let (Some(sender), Some(i)) = (sender, sender_idx)
        && heard_now > 0
        && batch.filter == 0
    {
        super::heard::raise(conn, sender, &logical.name, epoch_of(i), heard_now)
            .map_err(sql_err)?;
    }
    Ok(applied)
}

/// The end of a first stream of `device`'s rows of `logical` from the device itself, which
/// began at change number `from` here: the device's rows that it did not bring (numbered at or
/// before `from`) came through relays and are no longer the device's — it deleted them, and a
/// relay missed that. They go, with their clock rows, silently: the device's own state is the
/// truth. Returns how many rows went.
pub(crate) fn drop_unrefreshed(
    tx: &Transaction<'_>,
    logical: &TableMeta,
    device: &str,
    from: u64,
) -> Result<u64> {
    let conn = tx.conn()?;
    let path = tx.inner().config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    let name = crate::changes::device_table_name(device, &logical.name);
    let Some(meta) = registry::load_all(conn)
        .map_err(sql_err)?
        .into_iter()
        .find(|m| m.name == name)
    else {
        return Ok(0);
    };
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let gone = conn
        .execute(
            &format!(
                "DELETE FROM {} WHERE {} IN (SELECT ident FROM {} WHERE seq <= ?1 AND tomb = 0)",
                quote_ident(&meta.name),
                meta.identity_sql(),
                meta.clock()
            ),
            [from],
        )
        .map_err(sql_err)?;
    conn.execute(
        &format!("DELETE FROM {} WHERE seq <= ?1 AND tomb = 0", meta.clock()),
        [from],
    )
    .map_err(sql_err)?;
    Ok(gone as u64)
}

/// A row of this device's own, of a database whose rows are settled, that a peer relayed back:
/// a stale copy (see [`super::heard::settle_own`]), which the peer keeps for good unless this
/// device tells it otherwise — its stream already passed whatever this device holds of the
/// row, or never carried it. So, when the relayed state is not the one held here:
/// - none held: this device deleted the row since and purged the tombstone; a fresh delete,
///   which every copy yields to;
/// - one held (alive, or a tombstone the peer received and then purged): renumbered, so it
///   streams to the peer again and replaces the stale copy there.
fn disown(ctx: &Ctx<'_>, own: &TableMeta, row: &RowChange) -> Result<()> {
    let held = format!("SELECT hlc, tomb FROM {} WHERE ident = ?1", own.clock());
    let held: Option<(i64, bool)> = ctx.with(&held, |st| {
        st.query_row([&row.ident], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    })?;
    match held {
        Some((hlc, tomb)) if hlc as u64 == row.hlc && tomb == row.tomb => Ok(()),
        Some(_) => {
            let sql = format!(
                "UPDATE {} SET seq = peerlite_seq() WHERE ident = ?1",
                own.clock()
            );
            ctx.run(&sql, std::slice::from_ref(&row.ident)).map(drop)
        }
        None if row.tomb => Ok(()),
        None => {
            let sql = format!(
                "INSERT INTO {}(ident, seq, hlc, origin, tomb, cols) VALUES (?1, ?2, ?3, ?4, 1, NULL)",
                own.clock()
            );
            ctx.run(
                &sql,
                &[
                    row.ident.clone(),
                    Value::Integer(ctx.sync.next_seq()),
                    Value::Integer(ctx.sync.tick() as i64),
                    Value::Integer(LOCAL),
                ],
            )
            .map(drop)
        }
    }
}

fn protocol(detail: &str) -> Error {
    Error::Protocol {
        detail: detail.to_owned(),
    }
}

enum Outcome {
    Unchanged,
    /// The row's state changed; how, when it shows (a deleted row's registers do not).
    Changed(Option<ChangeKind>),
    Conflict(Error, Clash),
}

struct Local {
    e: Reg,
    alive: bool,
    regs: Vec<ColumnRegister>,
    cols_blob: Option<Vec<u8>>,
}

fn merge_row(
    ctx: &Ctx<'_>,
    target: &TableMeta,
    row: &RowChange,
    batch: &Batch,
    device_idx: &[i64],
    origin: i64,
) -> Result<Outcome> {
    let clock_row = || {
        format!(
            "SELECT hlc, origin, tomb, cols FROM {} WHERE ident = ?1",
            target.clock()
        )
    };
    let local: Option<Local> = ctx.with_kind(target, SqlKind::ClockRow, 0, clock_row, |st| {
        st.query_row([&row.ident], |r| {
            let cols: Option<Vec<u8>> = r.get(3)?;
            Ok(Local {
                e: (r.get::<_, i64>(0)? as u64, r.get(1)?),
                alive: !r.get::<_, bool>(2)?,
                regs: registers::decode(cols.as_deref().unwrap_or_default()),
                cols_blob: cols,
            })
        })
        .optional()
        .map_err(|e| ctx.sql_err(e))
    })?;
    let remote_e: Reg = (row.hlc, origin);
    let remote_alive = !row.tomb;
    let (e, alive) = match &local {
        Some(l) if !ctx.newer(remote_e, l.e) => (l.e, l.alive),
        _ => (remote_e, remote_alive),
    };
    let local_alive = local.as_ref().is_some_and(|l| l.alive);

    // Column by column, the greater register wins.
    let positions: Vec<Option<usize>> = target
        .columns
        .iter()
        .map(|c| batch.columns.iter().position(|b| b == c))
        .collect();
    let mut winners = Vec::with_capacity(target.columns.len());
    let mut ties: Vec<(usize, Value)> = Vec::new();
    for (i, pos) in positions.iter().enumerate() {
        let local_reg: Option<Reg> = local.as_ref().and_then(|l| {
            registers::get(&l.regs, i as u16)
                .map(|g| (g.hlc, g.origin))
                .or(l.alive.then_some(l.e))
        });
        let remote: Option<(Reg, Value)> =
            pos.and_then(
                |p| match row.regs.iter().find(|g| usize::from(g.column) == p) {
                    Some(g) => {
                        let reg = (
                            g.hlc,
                            device_idx.get(g.origin as usize).copied().unwrap_or(origin),
                        );
                        let value = g
                            .value
                            .clone()
                            .or_else(|| remote_alive.then(|| row.values.get(p).cloned()).flatten());
                        value.map(|v| (reg, v))
                    }
                    None if remote_alive => row.values.get(p).cloned().map(|v| (remote_e, v)),
                    None => None,
                },
            );
        winners.push(match (local_reg, remote) {
            (None, None) => Winner::None,
            (Some(l), None) => Winner::Local(l),
            (None, Some((r, v))) => Winner::Remote(r, v),
            (Some(l), Some((r, v))) => {
                if ctx.newer(r, l) {
                    Winner::Remote(r, v)
                } else if ctx.key(r) == ctx.key(l) {
                    ties.push((i, v));
                    Winner::Local(l)
                } else {
                    Winner::Local(l)
                }
            }
        });
    }
    // The same register with another value (columns that held values before they were
    // synced, say): the greater value wins, the same choice on every device.
    if !ties.is_empty() {
        let here = if local_alive {
            row_values(ctx, target, &row.ident)?
        } else {
            Vec::new()
        };
        for (i, theirs) in ties {
            let mine = match here.get(i) {
                Some(v) => v.clone(),
                None => {
                    pending_value(ctx, &pending_table(target), &row.ident, i)?.unwrap_or_default()
                }
            };
            let Some(Winner::Local(reg)) = winners.get(i) else {
                continue;
            };
            let reg = *reg;
            match value_order(&theirs, &mine) {
                std::cmp::Ordering::Greater => winners[i] = Winner::Remote(reg, theirs),
                // Ours wins: make it a write of ours, so it travels — every register of the
                // row may name the peer, and rows are not sent back to where they came from.
                std::cmp::Ordering::Less if !here.is_empty() => {
                    let l = local.as_ref().map_or((0, LOCAL), |l| l.e);
                    let blob = local.as_ref().and_then(|l| l.cols_blob.clone());
                    let stamp = crate::changes::state::stamp_after(
                        l.0,
                        blob.as_deref().unwrap_or_default(),
                        ctx.sync.tick(),
                    );
                    winners[i] = Winner::Local((stamp, LOCAL));
                }
                _ => {}
            }
        }
    }

    // The merged registers: those newer than the existence event (for a deleted row, only
    // those can ever matter again).
    let mut regs: Vec<ColumnRegister> = Vec::new();
    for (i, w) in winners.iter().enumerate() {
        let reg = match w {
            Winner::Local(r) | Winner::Remote(r, _) => *r,
            Winner::None => continue,
        };
        let keep = if alive {
            ctx.key(reg) != ctx.key(e)
        } else {
            ctx.newer(reg, e)
        };
        if keep {
            regs.push(ColumnRegister {
                column: i as u16,
                hlc: reg.0,
                origin: reg.1,
            });
        }
    }
    let new_blob = registers::encode(&regs);
    // A remote value takes effect in a live row, or, in a deleted one, only when it was
    // written after the delete (it is kept aside). Anything else lost the merge: a stale live
    // state for a row deleted here changes nothing, is not counted and re-stamps nothing.
    let any_remote_value = winners
        .iter()
        .any(|w| matches!(w, Winner::Remote(r, _) if alive || ctx.newer(*r, e)));
    let unchanged = local
        .as_ref()
        .is_some_and(|l| l.e == e && l.alive == alive && l.cols_blob == new_blob)
        && !any_remote_value;
    if unchanged {
        return Ok(Outcome::Unchanged);
    }
    let kind = match (local_alive, alive) {
        (false, true) => Some(ChangeKind::Inserted),
        (true, true) => any_remote_value.then_some(ChangeKind::Updated),
        (true, false) => Some(ChangeKind::Deleted {
            before: row_values(ctx, target, &row.ident)?,
        }),
        (false, false) => None,
    };

    let written = write_row(
        ctx,
        target,
        &row.ident,
        alive,
        local_alive,
        &winners,
        &regs,
        e,
    );
    match written {
        Ok(()) => {}
        // A constraint the row breaks here, or a value this table cannot store (a text key
        // for an INTEGER PRIMARY KEY: "datatype mismatch"): recorded, never a batch that
        // fails on every session.
        Err(Error::Sqlite { sqlite, message }) if matches!(sqlite.primary, 19 | 20) => {
            let clash = Clash {
                existence: (e.0, ctx.key(e).1.to_owned()),
                values: merged_values(ctx, target, &row.ident, local_alive, &winners)?,
                refused: (sqlite, message.clone()),
            };
            return Ok(Outcome::Conflict(Error::Sqlite { sqlite, message }, clash));
        }
        Err(err) => return Err(err),
    }
    let clock_write = || {
        format!(
            "INSERT OR REPLACE INTO {}(ident, seq, hlc, origin, tomb, cols) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            target.clock()
        )
    };
    ctx.with_kind(target, SqlKind::ClockWrite, 0, clock_write, |st| {
        st.execute(rusqlite::params![
            row.ident,
            ctx.sync.next_seq(),
            e.0 as i64,
            e.1,
            !alive,
            new_blob
        ])
        .map_err(|e| ctx.sql_err(e))
    })?;
    Ok(Outcome::Changed(kind))
}

/// A total order on values, the same on every device: NULL, then numbers (integers before
/// reals of equal value), text, blobs.
fn value_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Integer(_) | Value::Real(_) => 1,
            Value::Text(_) => 2,
            Value::Blob(_) => 3,
        }
    }
    let number = |v: &Value| match v {
        Value::Integer(i) => *i as f64,
        Value::Real(f) => *f,
        _ => 0.0,
    };
    match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.cmp(y),
        (Value::Blob(x), Value::Blob(y)) => x.cmp(y),
        _ if rank(a) == 1 && rank(b) == 1 => number(a)
            .partial_cmp(&number(b))
            .unwrap_or(Ordering::Equal)
            .then(matches!(a, Value::Real(_)).cmp(&matches!(b, Value::Real(_)))),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// The synced columns of a live row, in `target.columns` order.
fn row_values(ctx: &Ctx<'_>, target: &TableMeta, ident: &Value) -> Result<Vec<Value>> {
    let cols: Vec<String> = target.columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = ?1",
        cols.join(", "),
        quote_ident(&target.name),
        target.identity_sql()
    );
    let values = ctx.with(&sql, |st| {
        st.query_row([ident], |r| {
            (0..cols.len())
                .map(|i| r.get_ref(i).map(Value::from_ref))
                .collect::<rusqlite::Result<Vec<Value>>>()
        })
        .optional()
    })?;
    Ok(values.unwrap_or_default())
}

/// The bit of a column mask that stands for the identity column itself (a rowid identity is
/// not among the synced columns).
const IDENTITY_BIT: u64 = 1 << 63;

/// The names of the columns in `mask`, in order.
fn masked_columns(target: &TableMeta, mask: u64) -> Vec<String> {
    let mut cols: Vec<String> = target
        .columns
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| quote_ident(c))
        .collect();
    if mask & IDENTITY_BIT != 0 {
        cols.push(target.identity_sql());
    }
    cols
}

/// `UPDATE t SET (the columns in mask) = ? … WHERE identity = ?`. `OR ABORT` overrides a
/// conflict clause the table declares: a remote row that collides with a local one is a
/// recorded conflict, never a local row REPLACEd away (with capture paused, so without a
/// tombstone) or an update silently IGNOREd.
fn update_sql(target: &TableMeta, mask: u64) -> String {
    let sets: Vec<String> = masked_columns(target, mask)
        .into_iter()
        .map(|c| format!("{c} = ?"))
        .collect();
    format!(
        "UPDATE OR ABORT {} SET {} WHERE {} = ?",
        quote_ident(&target.name),
        sets.join(", "),
        target.identity_sql()
    )
}

/// `INSERT INTO t (the columns in mask) VALUES (?, …)`, `OR ABORT` as in [`update_sql`].
fn insert_sql(target: &TableMeta, mask: u64) -> String {
    let cols = masked_columns(target, mask);
    format!(
        "INSERT OR ABORT INTO {} ({}) VALUES ({})",
        quote_ident(&target.name),
        cols.join(", "),
        vec!["?"; cols.len()].join(", ")
    )
}

/// Brings the table row (and the pending values of a deleted row) to the merged state.
#[allow(clippy::too_many_arguments)]
fn write_row(
    ctx: &Ctx<'_>,
    target: &TableMeta,
    ident: &Value,
    alive: bool,
    local_alive: bool,
    winners: &[Winner],
    regs: &[ColumnRegister],
    e: Reg,
) -> Result<()> {
    let table = quote_ident(&target.name);
    let id = target.identity_sql();
    let pending = pending_table(target);
    let run = |sql: &str, params: &[Value]| ctx.run(sql, params);
    match (alive, local_alive) {
        (true, true) => {
            let mut mask = 0u64;
            let mut params = Vec::new();
            for (i, w) in winners.iter().enumerate() {
                if let Winner::Remote(_, v) = w {
                    mask |= 1 << i;
                    params.push(v.clone());
                }
            }
            if mask != 0 {
                params.push(ident.clone());
                ctx.run_kind(
                    target,
                    SqlKind::Update,
                    mask,
                    || update_sql(target, mask),
                    &params,
                )?;
            }
        }
        (true, false) => {
            let mut mask = 0u64;
            let mut params = Vec::new();
            for (i, w) in winners.iter().enumerate() {
                let value = match w {
                    Winner::Remote(_, v) => Some(v.clone()),
                    Winner::Local(_) => pending_value(ctx, &pending, ident, i)?,
                    Winner::None => None,
                };
                if let Some(v) = value {
                    mask |= 1 << i;
                    params.push(v);
                }
            }
            // The identity is written too when it is not a synced column (a rowid).
            if !target
                .columns
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&target.identity))
            {
                mask |= IDENTITY_BIT;
                params.push(ident.clone());
            }
            // No live row here, so normally no row at all: insert, and update only if one
            // turns out to be there (written while capture was off).
            let insert = || insert_sql(target, mask);
            match ctx.run_kind(target, SqlKind::Insert, mask, insert, &params) {
                Err(Error::Sqlite { sqlite, .. })
                    if sqlite.primary == 19 && exists(ctx, target, ident)? =>
                {
                    params.push(ident.clone());
                    let update = || update_sql(target, mask);
                    ctx.run_kind(target, SqlKind::Update, mask, update, &params)?;
                }
                other => {
                    other?;
                }
            }
            if ctx.has_pending(target)? {
                run(
                    &format!("DELETE FROM {pending} WHERE ident = ?"),
                    std::slice::from_ref(ident),
                )?;
            }
        }
        (false, was_alive) => {
            // Keep aside the values of columns written after the delete.
            for reg in regs.iter().filter(|g| ctx.newer((g.hlc, g.origin), e)) {
                let i = usize::from(reg.column);
                let value = match &winners[i] {
                    Winner::Remote(_, v) => Some(v.clone()),
                    Winner::Local(_) if was_alive => column_value(ctx, target, ident, i)?,
                    Winner::Local(_) => None,
                    Winner::None => None,
                };
                if let Some(v) = value {
                    run(
                        &format!(
                            "INSERT OR REPLACE INTO {pending}(ident, col, value) VALUES (?, ?, ?)"
                        ),
                        &[ident.clone(), Value::Integer(i as i64), v],
                    )?;
                    ctx.pending_rows.borrow_mut().insert(target.tid, true);
                }
            }
            if was_alive {
                run(
                    &format!("DELETE FROM {table} WHERE {id} = ?"),
                    std::slice::from_ref(ident),
                )?;
            }
        }
    }
    Ok(())
}

/// The values a live row has after the merge: the winning remote values, the rest as they are
/// here (in the table, or kept aside while the row was deleted).
fn merged_values(
    ctx: &Ctx<'_>,
    target: &TableMeta,
    ident: &Value,
    local_alive: bool,
    winners: &[Winner],
) -> Result<Vec<Value>> {
    let here = if local_alive {
        row_values(ctx, target, ident)?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(winners.len());
    for (i, w) in winners.iter().enumerate() {
        out.push(match w {
            Winner::Remote(_, v) => v.clone(),
            Winner::Local(_) if local_alive => here.get(i).cloned().unwrap_or_default(),
            Winner::Local(_) => {
                pending_value(ctx, &pending_table(target), ident, i)?.unwrap_or_default()
            }
            Winner::None => Value::Null,
        });
    }
    Ok(out)
}

fn pending_value(ctx: &Ctx<'_>, pending: &str, ident: &Value, col: usize) -> Result<Option<Value>> {
    ctx.with(
        &format!("SELECT value FROM {pending} WHERE ident = ?1 AND col = ?2"),
        |st| {
            st.query_row(rusqlite::params![ident, col as i64], |r| {
                r.get::<_, Value>(0)
            })
            .optional()
        },
    )
}

fn exists(ctx: &Ctx<'_>, target: &TableMeta, ident: &Value) -> Result<bool> {
    ctx.with(
        &format!(
            "SELECT EXISTS(SELECT 1 FROM {} WHERE {} = ?1)",
            quote_ident(&target.name),
            target.identity_sql()
        ),
        |st| st.query_row([ident], |r| r.get(0)),
    )
}

fn column_value(
    ctx: &Ctx<'_>,
    target: &TableMeta,
    ident: &Value,
    col: usize,
) -> Result<Option<Value>> {
    let Some(name) = target.columns.get(col) else {
        return Ok(None);
    };
    ctx.with(
        &format!(
            "SELECT {} FROM {} WHERE {} = ?1",
            quote_ident(name),
            quote_ident(&target.name),
            target.identity_sql()
        ),
        |st| st.query_row([ident], |r| r.get::<_, Value>(0)).optional(),
    )
}

/// A conflict's remote row as it is recorded: a batch without writers' epochs, so the same
/// change is recognised however it travelled (and records made before epochs travelled
/// still read).
#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    session: u64,
    table: String,
    filter: u64,
    prev: u64,
    last: u64,
    columns: Vec<String>,
    devices: Vec<String>,
    rows: Vec<RowChange>,
}

/// `row` as a batch of its own, in a form that depends on the row alone (not on the batch
/// or session it came in), so the same change delivered again is recognised.
fn single_row_batch(batch: &Batch, row: &RowChange) -> Recorded {
    let mut devices: Vec<String> = Vec::new();
    let mut number = |idx: u32| -> u32 {
        let name = batch.devices.get(idx as usize).cloned().unwrap_or_default();
        match devices.iter().position(|d| *d == name) {
            Some(n) => n as u32,
            None => {
                devices.push(name);
                (devices.len() - 1) as u32
            }
        }
    };
    let mut row = row.clone();
    row.origin = number(row.origin);
    for reg in &mut row.regs {
        reg.origin = number(reg.origin);
    }
    Recorded {
        session: 0,
        table: batch.table.clone(),
        filter: 0,
        prev: 0,
        last: 0,
        columns: batch.columns.clone(),
        devices,
        rows: vec![row],
    }
}

/// A recorded conflict's remote row (see [`single_row_batch`]).
pub(crate) fn decode_recorded(bytes: &[u8]) -> Result<Batch> {
    let r: Recorded = postcard::from_bytes(bytes).map_err(|e| Error::Protocol {
        detail: format!("a recorded conflict is unreadable: {e}"),
    })?;
    Ok(Batch {
        session: r.session,
        table: r.table,
        filter: r.filter,
        prev: r.prev,
        last: r.last,
        columns: r.columns,
        devices: r.devices,
        rows: r.rows,
        epochs: Vec::new(),
    })
}

fn record_conflict(
    ctx: &Ctx<'_>,
    target: &TableMeta,
    row: &RowChange,
    batch: &Batch,
    err: &Error,
) -> Result<bool> {
    let change = postcard::to_stdvec(&single_row_batch(batch, row)).unwrap_or_default();
    let device = batch
        .devices
        .get(row.origin as usize)
        .cloned()
        .unwrap_or_default();
    let inserted = ctx.with(
        "INSERT OR IGNORE INTO peerlite_conflicts(tbl, ident, device, change, code, message, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        |st| {
            st.execute(rusqlite::params![
                target.name,
                row.ident,
                device,
                change,
                err.code(),
                err.to_string(),
                ctx.sync.hlc.now_ms() as i64
            ])
        },
    )?;
    Ok(inserted > 0)
}

/// The table that holds `device`'s rows of `base`, made on first use.
pub(crate) fn ensure_device_table(
    tx: &Transaction<'_>,
    base: &TableMeta,
    device: &str,
) -> Result<TableMeta> {
    let conn = tx.conn()?;
    let path = tx.inner().config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    let name = device_table_name(device, &base.name);
    if let Some(m) = registry::load_all(conn)
        .map_err(sql_err)?
        .into_iter()
        .find(|m| m.name == name)
    {
        return align_device_table(tx, base, m);
    }
    let types = declared_types(conn, &base.name).map_err(sql_err)?;
    let mut defs: Vec<String> = base
        .columns
        .iter()
        .map(|c| {
            format!(
                "{} {}",
                quote_ident(c),
                types.get(c).map_or("", String::as_str)
            )
        })
        .collect();
    let key = if base.identity.eq_ignore_ascii_case("rowid") {
        defs.insert(0, "\"rowid\" INTEGER".into());
        "\"rowid\"".to_owned()
    } else {
        quote_ident(&base.identity)
    };
    defs.push(format!("PRIMARY KEY({key})"));
    let meta = TableMeta {
        name: name.clone(),
        tid: registry::next_tid(conn).map_err(sql_err)?,
        mode: DistributedTableType::DeviceCollaboration,
        identity: base.identity.clone(),
        columns: base.columns.clone(),
        base: Some(base.name.clone()),
        origin: Some(device.to_owned()),
        schema_version: base.schema_version,
        schema: None,
        auto_sync: false,
    };
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {} ({});{}{}",
        quote_ident(&name),
        defs.join(", "),
        triggers::clock_ddl(&meta),
        pending_ddl(&meta),
    );
    tx.execute_script(&ddl)?;
    registry::save(conn, &meta).map_err(sql_err)?;
    Ok(meta)
}

/// The declared type of each column of `table`, by name.
fn declared_types(conn: &Connection, table: &str) -> rusqlite::Result<HashMap<String, String>> {
    conn.prepare("SELECT name, type FROM pragma_table_info(?1)")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Gives device table `device` the synced columns `base` gained since it was made (a column
/// added to the table and distributed again): rows of `base` are read and written by its
/// column list, so a device table lacking one breaks every session in both directions. The
/// columns keep their positions (the registers refer to them) and new ones are appended, as
/// `distribute` appends them to `base`. Their values are NULL until the device that owns the
/// rows sends them (it has synced them since it added the column).
pub(crate) fn align_device_table(
    tx: &Transaction<'_>,
    base: &TableMeta,
    mut device: TableMeta,
) -> Result<TableMeta> {
    let missing: Vec<&String> = base
        .columns
        .iter()
        .filter(|c| !device.columns.contains(c))
        .collect();
    if missing.is_empty() {
        return Ok(device);
    }
    let conn = tx.conn()?;
    let path = tx.inner().config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    let types = declared_types(conn, &base.name).map_err(sql_err)?;
    let present = declared_types(conn, &device.name).map_err(sql_err)?;
    let mut ddl = String::new();
    for c in &missing {
        // A column the table already has (an earlier alignment cut short before its registry
        // row was saved cannot happen inside one transaction, but a hand-made one can).
        if !present.keys().any(|p| p.eq_ignore_ascii_case(c)) {
            ddl.push_str(&format!(
                "ALTER TABLE {} ADD COLUMN {} {};",
                quote_ident(&device.name),
                quote_ident(c),
                types.get(*c).map_or("", String::as_str)
            ));
        }
    }
    device.columns.extend(missing.into_iter().cloned());
    if !ddl.is_empty() {
        tx.execute_script_own(&ddl)?;
    }
    registry::save(conn, &device).map_err(sql_err)?;
    Ok(device)
}

/// Aligns every device table of `base` (see [`align_device_table`]).
pub(crate) fn align_device_tables(tx: &Transaction<'_>, base: &TableMeta) -> Result<()> {
    let conn = tx.conn()?;
    let path = tx.inner().config.path();
    let devices: Vec<TableMeta> = registry::load_all(conn)
        .map_err(|e| Error::from_sqlite(e, path))?
        .into_iter()
        .filter(|m| m.base.as_deref() == Some(base.name.as_str()))
        .collect();
    for device in devices {
        align_device_table(tx, base, device)?;
    }
    Ok(())
}
