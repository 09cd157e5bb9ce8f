//! Versioned open: Android's `SQLiteOpenHelper`, done right.
//!
//! The version lives in `PRAGMA user_version`. On open, `on_create` (version 0), `on_upgrade`
//! or `on_downgrade` run inside ONE `BEGIN IMMEDIATE` transaction together with the version
//! bump; foreign keys are switched off around it and `PRAGMA foreign_key_check` runs before
//! the commit. A failing step rolls everything back, leaves the old version and data, and the
//! error ([`Error::Migration`], 17010001) names the step — the next open simply tries again.
//!
//! ```
//! use peerlite::{Migration, Migrations, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("app.db");
//! let mut v1 = Migrations::new().step(Migration::sql("0001_init", "CREATE TABLE book(id INTEGER PRIMARY KEY, name TEXT)"));
//! let store = RdbStore::open_with(StoreConfig::new(&path).version(1), &mut v1)?;
//! store.execute("INSERT INTO book(name) VALUES ('Dune')", &[])?;
//! store.close()?;
//!
//! let mut v2 = v1.step(Migration::sql("0002_content", "ALTER TABLE book ADD COLUMN content TEXT DEFAULT ''"));
//! let store = RdbStore::open_with(StoreConfig::new(&path).version(2), &mut v2)?;
//! assert_eq!(store.version()?, 2);
//! let mut rs = store.query_sql("SELECT name, content FROM book", &[])?;
//! assert!(rs.go_to_first_row()?);
//! assert_eq!(rs.get_string(0)?, "Dune");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod layers;
mod migrations;
mod rebuild;
mod sql_name;

pub use migrations::{Migration, Migrations};
pub use rebuild::{ColumnMapping, RebuildReport};

use crate::StoreKind;
use crate::error::{Error, Result};
use crate::store::{RdbStore, Transaction};

/// The steps of a versioned open. Only `on_create` and `on_upgrade` are required.
pub trait OpenCallbacks {
    /// Before any version check; set connection-level options here.
    fn on_configure(&mut self, _store: &RdbStore) -> Result<()> {
        Ok(())
    }

    /// Creates the schema of `version` in a new database (version 0).
    fn on_create(&mut self, tx: &Transaction<'_>, version: u32) -> Result<()>;

    /// Moves the schema from `old` to `new` (`old < new`).
    fn on_upgrade(&mut self, tx: &Transaction<'_>, old: u32, new: u32) -> Result<()>;

    /// Moves the schema from `old` down to `new`; an error unless overridden.
    fn on_downgrade(&mut self, _tx: &Transaction<'_>, old: u32, new: u32) -> Result<()> {
        Err(Error::Downgrade { from: old, to: new })
    }

    /// After the version is right, outside the migration transaction.
    fn on_open(&mut self, _store: &RdbStore) -> Result<()> {
        Ok(())
    }

    /// A copy the store can keep, to upgrade data restored from an older backup without being
    /// handed the callbacks again. `Migrations` returns one; other callbacks need
    /// `RestoreRequest::migrations`.
    fn boxed_clone(&self) -> Option<Box<dyn OpenCallbacks + Send>> {
        None
    }

    /// Names of the steps a move from `from` to `to` runs, for reports and dry runs.
    fn describe(&self, from: u32, to: u32) -> Vec<String> {
        vec![step_label(from, to)]
    }
}

/// The label of a generic step: `on_create`, `on_upgrade(1 -> 2)`, `on_downgrade(3 -> 2)`.
pub(crate) fn step_label(from: u32, to: u32) -> String {
    match from {
        0 => "on_create".to_owned(),
        f if f < to => format!("on_upgrade({f} -> {to})"),
        f => format!("on_downgrade({f} -> {to})"),
    }
}

/// Callbacks for a plain `open`: a new store is stamped with the version, any other move fails.
#[derive(Debug, Default)]
pub struct NoMigrations;

impl OpenCallbacks for NoMigrations {
    fn on_create(&mut self, _tx: &Transaction<'_>, _version: u32) -> Result<()> {
        Ok(())
    }

    fn on_upgrade(&mut self, _tx: &Transaction<'_>, old: u32, new: u32) -> Result<()> {
        Err(Error::invalid(
            StoreKind::Relational,
            format!(
                "the database is at version {old}; moving it to {new} needs migrations (RdbStore::open_with)"
            ),
        ))
    }
}

/// What a versioned open or `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The version before.
    pub from: u32,
    /// The version after (unchanged on a dry run).
    pub to: u32,
    /// The steps that ran, in order; empty when the version was already right.
    pub steps: Vec<String>,
    /// True when everything ran and was then rolled back.
    pub dry_run: bool,
}

impl RdbStore {
    /// Opens (creating if needed) the store. When the config has a version, the store must be
    /// new (it is stamped with that version) or already at it; use
    /// [`open_with`](RdbStore::open_with) to create and migrate.
    ///
    /// # Errors
    /// 14800010 bad path, 14800011 not a database, 14800020 wrong key, 14800001 version 0,
    /// 14800017 lowering the security level.
    pub fn open(config: crate::StoreConfig) -> Result<RdbStore> {
        RdbStore::open_with(config, &mut NoMigrations)
    }

    /// Opens the file without looking at versions (the versioned open builds on this),
    /// rebuilding it first when it is corrupted and `allow_rebuild` is set.
    pub(crate) fn open_unversioned(config: crate::StoreConfig) -> Result<RdbStore> {
        config.validate()?;
        crate::repair::open_or_repair(config)
    }

    /// Opens the store and brings it to `config.version` with `callbacks`, the
    /// SQLiteOpenHelper way: `on_configure`, then create / upgrade / downgrade in one
    /// transaction, then `on_open`.
    ///
    /// # Errors
    /// 17010001 a step failed (nothing changed), 17010002 downgrade without a path,
    /// 17010003 read-only store needs a migration, 14800001 version 0.
    pub fn open_with(
        config: crate::StoreConfig,
        callbacks: &mut dyn OpenCallbacks,
    ) -> Result<RdbStore> {
        let target = config.version;
        let store = RdbStore::open_unversioned(config)?;
        callbacks.on_configure(&store)?;
        if let Some(target) = target {
            store.migrate(target, callbacks, false)?;
        }
        callbacks.on_open(&store)?;
        if let Some(opened) = store.inner.layer::<layers::OpenedWith>() {
            *opened
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = callbacks.boxed_clone();
        }
        Ok(store)
    }

    /// Brings an open store to version `target` in one transaction. With `dry_run`, every step
    /// runs and is then rolled back: the report says what would happen and proves it works.
    pub fn migrate(
        &self,
        target: u32,
        callbacks: &mut dyn OpenCallbacks,
        dry_run: bool,
    ) -> Result<MigrationReport> {
        if target == 0 {
            return Err(Error::invalid(
                StoreKind::Relational,
                "version must be >= 1, was 0",
            ));
        }
        let current = self.version()?;
        if current == target {
            return Ok(MigrationReport {
                from: current,
                to: target,
                steps: Vec::new(),
                dry_run,
            });
        }
        if self.config().read_only {
            return Err(Error::ReadOnlyUpgrade {
                from: current,
                to: target,
            });
        }
        if current != 0 && !dry_run && self.config().backup_before_migration {
            // The automatic backup before a migration: one step back is always possible.
            crate::backup::auto_backup_now(self, &format!("-before-v{target}"))?;
        }
        let tx = Transaction::begin(&self.inner, true)?;
        let path = self.path();
        let sql_err = |e| Error::from_sqlite(e, path);
        // Read again under the write lock: another process may have migrated meanwhile.
        let from: u32 = tx
            .conn()?
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?;
        if from == target {
            tx.rollback()?;
            return Ok(MigrationReport {
                from,
                to: target,
                steps: Vec::new(),
                dry_run,
            });
        }
        let wrap = |e: Error, step: String| match e {
            e @ Error::Migration { .. } => e,
            e => Error::Migration {
                step,
                from,
                to: target,
                source: Box::new(e),
            },
        };
        let result = match from {
            0 => callbacks.on_create(&tx, target),
            f if f < target => callbacks.on_upgrade(&tx, f, target),
            f => callbacks.on_downgrade(&tx, f, target),
        };
        result.map_err(|e| match e {
            e @ Error::Downgrade { .. } => e,
            e => wrap(e, step_label(from, target)),
        })?;
        check_foreign_keys(&tx).map_err(|e| wrap(e, "foreign_key_check".into()))?;
        tx.conn()?
            .execute_batch(&format!("PRAGMA user_version = {target}"))
            .map_err(sql_err)?;
        let steps = callbacks.describe(from, target);
        if dry_run {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }
        Ok(MigrationReport {
            from,
            to: if dry_run { from } else { target },
            steps,
            dry_run,
        })
    }
}

fn check_foreign_keys(tx: &Transaction<'_>) -> Result<()> {
    let path = tx.inner().config.path();
    let violations: Vec<(String, usize)> = tx
        .conn()?
        .prepare(r#"SELECT "table", count(*) FROM pragma_foreign_key_check GROUP BY "table" ORDER BY "table""#)
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?.collect())
        .map_err(|e| Error::from_sqlite(e, path))?;
    match violations.first() {
        None => Ok(()),
        Some((table, _)) => Err(Error::ForeignKeyViolation {
            table: table.clone(),
            violations: violations.iter().map(|(_, n)| n).sum(),
        }),
    }
}
