//! What the backup and repair commands act on: a relational database file (`DB`) or a
//! key-value store (`--kv STORE_DIR STORE_ID`). Both run the same library mechanism.

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use peerlite::{
    BackupInfo, BackupRequest, CheckMode, DeleteResult, KvStore, Options, Progress, RdbStore,
    RebuiltType, RepairReport, RestoreReport, RestoreRequest,
};

use super::store_config;
use crate::{Global, UsageError};

/// `--kv STORE_DIR STORE_ID`, accepted by every backup and repair command.
#[derive(clap::Args, Debug)]
pub struct KvTarget {
    /// Act on a key-value store instead of a database file.
    #[arg(long, num_args = 2, value_names = ["STORE_DIR", "STORE_ID"])]
    kv: Option<Vec<String>>,
}

/// Where the store is.
#[derive(Debug, Clone)]
pub enum Location {
    /// A relational database file.
    Db(PathBuf),
    /// A key-value store.
    Kv { dir: PathBuf, id: String },
}

impl KvTarget {
    /// Splits the positionals: with `--kv` they are all operands; without, the first is DB.
    /// [`locate`](Self::locate) for a command that takes no other positional argument.
    pub fn locate_only(&self, positionals: Vec<String>) -> anyhow::Result<Location> {
        let (location, rest) = self.locate(positionals)?;
        match (&location, rest.is_empty()) {
            (_, true) => Ok(location),
            (Location::Kv { .. }, false) => Err(UsageError(format!(
                "give DB or --kv STORE_DIR STORE_ID, not both (got {})",
                rest.join(" ")
            ))
            .into()),
            (Location::Db(_), false) => {
                Err(UsageError(format!("unexpected arguments: {}", rest.join(" "))).into())
            }
        }
    }

    pub fn locate(&self, positionals: Vec<String>) -> anyhow::Result<(Location, Vec<String>)> {
        match &self.kv {
            Some(kv) => {
                let (dir, id) = match kv.as_slice() {
                    [dir, id] => (PathBuf::from(dir), id.clone()),
                    _ => return Err(UsageError("--kv takes STORE_DIR STORE_ID".into()).into()),
                };
                Ok((Location::Kv { dir, id }, positionals))
            }
            None => {
                let mut rest = positionals.into_iter();
                let db = rest
                    .next()
                    .ok_or_else(|| UsageError("give DB, or --kv STORE_DIR STORE_ID".into()))?;
                Ok((Location::Db(PathBuf::from(db)), rest.collect()))
            }
        }
    }
}

/// An open store of either kind.
pub enum Opened {
    /// Relational.
    Rdb(RdbStore),
    /// Key-value (the manager keeps it registered).
    Kv(KvStore),
}

/// How to treat a store flagged as corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Refuse it (the default for everything that reads or writes data).
    Normal,
    /// Open it anyway, to check it, back up what is readable or restore over it.
    Recovery,
    /// Rebuild it from the newest verified backup.
    Rebuild,
}

impl Location {
    /// The database file of the store.
    pub fn db_path(&self) -> PathBuf {
        match self {
            Location::Db(path) => path.clone(),
            Location::Kv { dir, id } => dir.join(format!("{id}.db")),
        }
    }

    /// The store's backups, listed without opening it (a damaged or lost store's too). A
    /// path where no store is and none was is an error.
    pub fn backups(&self, global: &Global) -> peerlite::Result<Vec<BackupInfo>> {
        let db = self.db_path();
        match peerlite::repair::require_store(&db, None) {
            Err(e) if !e.is_corruption() => {
                return Err(match self {
                    Location::Db(_) => e,
                    Location::Kv { dir, id } => super::existing_kv_manager(dir, id)
                        .err()
                        .unwrap_or(peerlite::Error::NotFound {
                            what: format!("key-value store {id:?} in {}", dir.display()),
                        }),
                });
            }
            _ => {}
        }
        RdbStore::backups_of(&store_config(global, &db))
    }

    /// Opens the store.
    pub fn open(&self, global: &Global, mode: Mode) -> peerlite::Result<Opened> {
        self.open_pausing(global, mode, None)
    }

    /// Opens the store for a restore over it when it cannot be opened: damaged, it is rebuilt
    /// from the backup `source` (verified first); `migrations` then bring a database to their
    /// latest version.
    pub fn open_rebuilding_from(
        &self,
        global: &Global,
        source: &str,
        migrations: Option<&mut peerlite::Migrations>,
    ) -> peerlite::Result<Opened> {
        match self {
            Location::Db(path) => {
                let config = store_config(global, path)
                    .allow_rebuild(true)
                    .rebuild_from(source);
                match migrations {
                    Some(m) => {
                        let latest = m.latest();
                        let config = if latest > 0 {
                            config.version(latest)
                        } else {
                            config
                        };
                        RdbStore::open_with(config, m).map(Opened::Rdb)
                    }
                    None => RdbStore::open(config).map(Opened::Rdb),
                }
            }
            Location::Kv { dir, id } => {
                let manager = super::existing_kv_manager(dir, id)?;
                // At the label and as the kind the store (or else its backup) holds.
                let options = Options {
                    allow_rebuild: true,
                    rebuild_from: Some(source.to_owned()),
                    ..super::level::kv_options(global, dir, id, false)
                };
                manager.get_kv_store(id, options).map(Opened::Kv)
            }
        }
    }

    /// Opens the store; a rebuild sleeps `pause` between its steps (crash tests).
    pub fn open_pausing(
        &self,
        global: &Global,
        mode: Mode,
        pause: Option<std::time::Duration>,
    ) -> peerlite::Result<Opened> {
        let (allow_rebuild, for_recovery) = (mode == Mode::Rebuild, mode == Mode::Recovery);
        match self {
            Location::Db(path) => {
                // Nothing there is an error; a missing or empty file beside a store's traces
                // (or a pending repair) goes to the open, which reports or repairs it.
                if let Err(e) = peerlite::repair::require_store(path, None)
                    && (!e.is_corruption() || mode == Mode::Normal)
                {
                    return Err(e);
                }
                let mut config = store_config(global, path)
                    .allow_rebuild(allow_rebuild)
                    .for_recovery(for_recovery);
                if let Some(pause) = pause {
                    config = config.repair_step_pause(pause);
                }
                RdbStore::open(config).map(Opened::Rdb)
            }
            Location::Kv { dir, id } => {
                let manager = super::existing_kv_manager(dir, id)?;
                let options = Options {
                    allow_rebuild,
                    for_recovery,
                    ..super::level::kv_options(global, dir, id, false)
                };
                let store = manager.get_kv_store(id, options)?;
                Ok(Opened::Kv(store))
            }
        }
    }
}

impl Opened {
    pub fn backup_with(&self, request: BackupRequest<'_>) -> peerlite::Result<BackupInfo> {
        match self {
            Opened::Rdb(s) => s.backup_with(request),
            Opened::Kv(s) => s.backup_with(request),
        }
    }

    pub fn restore_with(&self, request: RestoreRequest<'_>) -> peerlite::Result<RestoreReport> {
        match self {
            Opened::Rdb(s) => s.restore_with(request),
            Opened::Kv(s) => s.restore_with(request),
        }
    }

    pub fn delete_backup(&self, names: &[&str]) -> Vec<DeleteResult> {
        match self {
            Opened::Rdb(s) => s.delete_backup(names),
            Opened::Kv(s) => s.delete_backup(names),
        }
    }

    /// The schema version (a key-value store's format version).
    pub fn version(&self) -> peerlite::Result<i64> {
        match self {
            Opened::Rdb(s) => s.user_version().map(i64::from),
            Opened::Kv(_) => Ok(1),
        }
    }

    pub fn check(&self, mode: CheckMode) -> peerlite::Result<()> {
        match self {
            Opened::Rdb(s) => s.check(mode),
            Opened::Kv(s) => s.check(mode),
        }
    }

    pub fn rebuilt(&self) -> (RebuiltType, Option<RepairReport>) {
        match self {
            Opened::Rdb(s) => (s.rebuilt(), s.repair_report().cloned()),
            Opened::Kv(s) => (s.rebuilt(), s.repair_report().cloned()),
        }
    }
}

/// A progress bar on a terminal (stderr), nothing otherwise.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(what: &str) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} pages ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Bar(Some(bar))
    }

    pub fn update(&self, p: Progress) {
        if let Some(bar) = &self.0 {
            bar.set_length(u64::from(p.page_count));
            bar.set_position(u64::from(p.page_count.saturating_sub(p.remaining)));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
