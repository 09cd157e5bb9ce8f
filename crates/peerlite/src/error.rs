//! One error type with stable numeric codes.
//!
//! Every failure carries a [`code`](Error::code) that never changes between releases: ArkData's
//! published code where one exists (14800011 database corrupted, 14800014 already closed,
//! 15100004 not found, …) and a peerlite code in the `17xxxxxx` range otherwise. SQLite's own
//! result code is kept ([`sqlite_code`](Error::sqlite_code)), and [`hint`](Error::hint) says what
//! to do next.
//!
//! ```
//! use peerlite::{Error, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("app.db")))?;
//! let err = store.execute("SELEKT 1", &[]).unwrap_err();
//! assert_eq!(err.code(), 14800021);
//! assert_eq!(err.sqlite_code(), Some(1));
//! assert!(!err.hint().is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

/// Result type of every fallible peerlite call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which kind of store an error comes from; ArkData gives the two stores different codes for
/// the same condition (corrupted: 14800011 vs 15100003).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The relational store ([`crate::RdbStore`]).
    Relational,
    /// The key-value store ([`crate::KvStore`]).
    KeyValue,
}

/// SQLite's primary and extended result codes, kept from the underlying failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteCode {
    /// The primary result code (`extended & 0xff`), e.g. 19 for `SQLITE_CONSTRAINT`.
    pub primary: i32,
    /// The extended result code, e.g. 2067 for `SQLITE_CONSTRAINT_UNIQUE`.
    pub extended: i32,
}

/// Every error peerlite reports. Match on [`code`](Error::code) for stable handling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument was rejected before anything was touched.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong.
        message: String,
        /// Which store rejected it.
        kind: StoreKind,
    },
    /// A table named in a predicate or call does not exist.
    #[error("no such table: {table}")]
    UnknownTable {
        /// The name as given.
        table: String,
        /// Which store rejected it.
        kind: StoreKind,
    },
    /// A column named in a predicate or call does not exist in its table.
    #[error("no such column: {table}.{column}")]
    UnknownColumn {
        /// The table searched.
        table: String,
        /// The name as given.
        column: String,
        /// Which store rejected it.
        kind: StoreKind,
    },
    /// The database path or name cannot be used.
    #[error("invalid database path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The database file is corrupted or is not a database (SQLITE_CORRUPT / SQLITE_NOTADB).
    #[error("database corrupted: {path:?}: {detail}")]
    Corrupted {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the check reported.
        detail: String,
        /// SQLite's code, when SQLite reported it.
        sqlite: Option<SqliteCode>,
        /// Which store.
        kind: StoreKind,
    },
    /// A result set was used while not positioned on a row.
    #[error("row out of range: {detail}")]
    RowOutOfRange {
        /// Where the cursor was.
        detail: String,
    },
    /// A column index or name is not in the result set.
    #[error("column out of range: {column}")]
    ColumnOutOfRange {
        /// The index or name as given.
        column: String,
    },
    /// The store or result set was closed (or invalidated by a restore).
    #[error("{what} already closed")]
    Closed {
        /// "store" or "result set".
        what: &'static str,
        /// Which store.
        kind: StoreKind,
    },
    /// A key-value entry or store does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// `query_sql` was given a statement that writes.
    #[error("not a query: {sql}")]
    NotAQuery {
        /// The statement.
        sql: String,
    },
    /// The encryption key does not open the database, or a key is missing or superfluous.
    #[error("cannot decrypt {path:?}: {detail}")]
    WrongKey {
        /// The database file.
        path: PathBuf,
        /// Which of the three cases it is.
        detail: String,
    },
    /// The store exists with options that cannot change (type, a lower security level, …).
    #[error("configuration changed: {detail}")]
    ConfigChanged {
        /// What differs.
        detail: String,
        /// Which store.
        kind: StoreKind,
    },
    /// More observers than a store accepts.
    #[error("too many observers: at most {max} per store")]
    TooManyObservers {
        /// The cap.
        max: usize,
        /// Which store.
        kind: StoreKind,
    },
    /// A value cannot be read as the requested type.
    #[error("type mismatch in column {column}: expected {expected}, found {found}")]
    TypeMismatch {
        /// The column index or name.
        column: String,
        /// The type asked for.
        expected: &'static str,
        /// The type stored.
        found: &'static str,
    },
    /// A write was attempted on a store opened read-only.
    #[error("store is read-only: {detail}")]
    ReadOnly {
        /// What was attempted.
        detail: String,
    },
    /// A step of a versioned open failed; everything it did was rolled back.
    #[error("migration step `{step}` failed while moving version {from} -> {to}: {source}")]
    Migration {
        /// The step that failed (`on_create`, `on_upgrade(1 -> 2)`, `0002_add_email`, …).
        step: String,
        /// The version the database stayed at.
        from: u32,
        /// The version that was asked for.
        to: u32,
        /// What went wrong inside the step.
        source: Box<Error>,
    },
    /// The database is newer than the version asked for and no downgrade path was given.
    #[error("cannot downgrade database from version {from} to {to}")]
    Downgrade {
        /// The database's version.
        from: u32,
        /// The version asked for.
        to: u32,
    },
    /// A read-only store needs a migration it cannot run.
    #[error("cannot upgrade read-only database from version {from} to {to}")]
    ReadOnlyUpgrade {
        /// The database's version.
        from: u32,
        /// The version asked for.
        to: u32,
    },
    /// `PRAGMA foreign_key_check` found violations at the end of a migration.
    #[error(
        "foreign key check failed after migration: {violations} violation(s), first in table {table}"
    )]
    ForeignKeyViolation {
        /// The first table with a violating row.
        table: String,
        /// How many violating rows.
        violations: usize,
    },
    /// A file operation outside SQLite failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No backup of that name (or at that path).
    #[error("backup not found: {what}")]
    BackupNotFound {
        /// The name or path asked for.
        what: String,
    },
    /// A backup failed verification: missing or unreadable manifest, wrong size or checksum,
    /// failed integrity check. It is never restored.
    #[error("backup {path:?} failed verification: {reason}")]
    BackupInvalid {
        /// The backup file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// The backup's schema version is newer than the store's.
    #[error("backup is at schema version {backup}, newer than this store's version {store}")]
    BackupTooNew {
        /// The backup's version.
        backup: u32,
        /// The store's version.
        store: u32,
    },
    /// The backup was taken from another database.
    #[error("backup belongs to another database (store id {backup}; this store is {store})")]
    BackupOfAnotherStore {
        /// The backup's store id.
        backup: String,
        /// This store's id.
        store: String,
    },
    /// A long operation was cancelled by its caller; nothing was left behind.
    #[error("{what} cancelled")]
    Cancelled {
        /// What was cancelled.
        what: &'static str,
    },
    /// The name is reserved for peerlite's automatic backups.
    #[error("backup name {name:?} is reserved: {reason}")]
    ReservedBackupName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A sync schema file, or a table it describes, breaks one or more of its rules.
    #[error("sync schema rejected: {}", crate::schema::first_error(problems).map(ToString::to_string).unwrap_or_default())]
    SyncSchema {
        /// Every problem found (errors and warnings).
        problems: Vec<crate::schema::SchemaProblem>,
    },
    /// A table is asked to be distributed in another mode than the database's distributed tables.
    #[error("distributed table type mismatch: {detail}")]
    DistributedTypeMismatch {
        /// What differs.
        detail: String,
    },
    /// A sync operation named a table that is not distributed.
    #[error("table {table} is not distributed")]
    NotDistributed {
        /// The table.
        table: String,
    },
    /// A local write to a table that holds another device's rows.
    #[error("rows of {table} came from another device and are read-only here")]
    ReadOnlyDeviceTable {
        /// The device table.
        table: String,
    },
    /// A write would leave a NULL in a single-version table's conflict column.
    #[error("the conflict column {column} of {table} may not be NULL")]
    NullConflictColumn {
        /// The table.
        table: String,
        /// The conflict column.
        column: String,
    },
    /// A peer sent a message this device cannot use.
    #[error("sync protocol error: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// A peer's store cannot sync with this one (another store, schema or protocol).
    #[error("incompatible peer {device}: {detail}")]
    IncompatiblePeer {
        /// The peer.
        device: String,
        /// Why.
        detail: String,
    },
    /// The store has synced under another device id than the one it is opened with.
    #[error("this store synced as device {stored}; it cannot become {requested} silently")]
    DeviceIdChanged {
        /// The id it synced under.
        stored: String,
        /// The id asked for.
        requested: String,
    },
    /// A sync with a device ended with a status other than a protocol or compatibility
    /// fault (refused by security level, timed out, unreachable, a failure on either side).
    #[error("sync with {device} failed (status {code}): {detail}")]
    SyncFailed {
        /// The device.
        device: String,
        /// The status code ([`crate::sync::SyncStatus::code`]).
        code: u32,
        /// What happened.
        detail: String,
    },
    /// Another device refused or failed a request of this one (a remote query); its code is
    /// kept.
    #[error("device {device} answered error {code}: {detail}")]
    Remote {
        /// The device that answered.
        device: String,
        /// Its error code.
        code: u32,
        /// Its message.
        detail: String,
    },
    /// A peer's watermark lies before deletes this store no longer remembers (their
    /// tombstones were purged past the retention): a delta would never tell it of them, so it
    /// needs a client reset.
    #[error(
        "{device} last synced {table} at change {watermark}; deletes up to change {purged} were purged since (tombstone retention), so it needs a client reset"
    )]
    ResetRequired {
        /// The device that needs the reset.
        device: String,
        /// The table.
        table: String,
        /// Its watermark.
        watermark: u64,
        /// The highest purged sequence number.
        purged: u64,
    },
    /// Another client reset of this store is running.
    #[error("another client reset of {path} is running")]
    ResetRunning {
        /// The database.
        path: std::path::PathBuf,
    },
    /// Client resets of this store failed several times in a row; no further one is begun.
    #[error("{attempts} client resets of {path} failed in a row; no further one is begun")]
    ResetFailing {
        /// The database.
        path: std::path::PathBuf,
        /// The attempts made.
        attempts: u32,
    },
    /// A remote query refused by the device holding the data (its security level).
    #[error("the query is refused: {reason}")]
    QueryRefused {
        /// The code ([`crate::sync::SyncStatus::code`], 17040006).
        code: u32,
        /// Why.
        reason: String,
    },
    /// A remote query's result is larger than the cap (4 MiB, as ArkData's).
    #[error("the query's result exceeds {max} bytes (at least {bytes} bytes)")]
    ResultTooLarge {
        /// Bytes of rows read before giving up.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// A statement from the caller would change peerlite's own objects (its tables, triggers,
    /// a distributed table's name or columns) or a setting peerlite relies on; nothing ran.
    #[error("refused: {what}: {reason}")]
    Protected {
        /// What the statement would do, naming the object (`dropping peerlite_meta`).
        what: String,
        /// Why that is refused.
        reason: String,
    },
    /// A full check found peerlite's own objects damaged (a missing or altered capture trigger,
    /// clock table, registry entry or identity row) — by a tool that bypasses peerlite, such
    /// as the `sqlite3` shell. The data itself is readable.
    #[error("peerlite's own objects are damaged: {}", .problems.join("; "))]
    OwnObjectsDamaged {
        /// One line per damaged object, naming it.
        problems: Vec<String>,
    },
    /// Any other SQLite failure, with its code kept.
    #[error("sqlite error {}: {message}", .sqlite.extended)]
    Sqlite {
        /// SQLite's result code.
        sqlite: SqliteCode,
        /// SQLite's message.
        message: String,
    },
}

impl Error {
    /// The stable numeric code of this error.
    pub fn code(&self) -> u32 {
        use StoreKind::{KeyValue, Relational};
        match self {
            Error::InvalidArgument { kind, .. }
            | Error::UnknownTable { kind, .. }
            | Error::UnknownColumn { kind, .. } => match kind {
                Relational => 14800001,
                KeyValue => 401,
            },
            Error::InvalidPath { .. } => 14800010,
            Error::Corrupted { kind, .. } => match kind {
                Relational => 14800011,
                KeyValue => 15100003,
            },
            Error::RowOutOfRange { .. } => 14800012,
            Error::ColumnOutOfRange { .. } => 14800013,
            Error::Closed { kind, .. } => match kind {
                Relational => 14800014,
                KeyValue => 15100005,
            },
            Error::ConfigChanged { kind, .. } => match kind {
                Relational => 14800017,
                KeyValue => 15100002,
            },
            Error::NotAQuery { .. } => 14800019,
            Error::WrongKey { .. } => 14800020,
            Error::NotFound { .. } => 15100004,
            Error::TooManyObservers { kind, .. } => match kind {
                Relational => 17000001,
                KeyValue => 15100001,
            },
            Error::Io { .. } => 17000002,
            Error::TypeMismatch { .. } => 14800033,
            Error::ReadOnly { .. } => 14800027,
            Error::Migration { .. } => 17010001,
            Error::Downgrade { .. } => 17010002,
            Error::ReadOnlyUpgrade { .. } => 17010003,
            Error::ForeignKeyViolation { .. } => 17010004,
            Error::BackupNotFound { .. } => 17020001,
            Error::BackupInvalid { .. } => 17020002,
            Error::BackupTooNew { .. } => 17020003,
            Error::BackupOfAnotherStore { .. } => 17020004,
            Error::Cancelled { .. } => 17020005,
            Error::ReservedBackupName { .. } => 17020006,
            Error::SyncSchema { problems } => {
                crate::schema::first_error(problems).map_or(17030022, |p| p.code())
            }
            Error::DistributedTypeMismatch { .. } => 14800051,
            Error::NotDistributed { .. } => 17040001,
            Error::ReadOnlyDeviceTable { .. } => 17040002,
            Error::NullConflictColumn { .. } => 17030005,
            Error::Protocol { .. } => 17040004,
            Error::IncompatiblePeer { .. } => 17040005,
            Error::SyncFailed { code, .. } | Error::QueryRefused { code, .. } => *code,
            Error::DeviceIdChanged { .. } => 17040009,
            Error::ResultTooLarge { .. } => 17040010,
            Error::ResetRequired { .. } => 17040011,
            Error::ResetFailing { .. } => 17040014,
            Error::ResetRunning { .. } => 17040015,
            Error::Remote { code, .. } => *code,
            Error::Protected { .. } => 17050001,
            Error::OwnObjectsDamaged { .. } => 17050002,
            Error::Sqlite { sqlite, .. } => code_for_sqlite(sqlite.primary),
        }
    }

    /// SQLite's extended result code, when SQLite reported the failure.
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            Error::Sqlite { sqlite, .. } => Some(sqlite.extended),
            Error::Corrupted { sqlite, .. } => sqlite.map(|s| s.extended),
            Error::Migration { source, .. } => source.sqlite_code(),
            _ => None,
        }
    }

    /// What to do next, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            Error::InvalidArgument { .. } => "check the argument against the API documentation",
            Error::UnknownTable { .. } => {
                "check the table name; names are matched case-insensitively against the schema"
            }
            Error::UnknownColumn { .. } => {
                "check the column name; names are validated against the table's schema and never spliced into SQL"
            }
            Error::InvalidPath { .. } => {
                "give a plain file name (no path separators or `..`) or a path inside an existing directory"
            }
            Error::Corrupted { .. } => {
                "restore a backup with `peerlite restore`, or open with allow_rebuild (`peerlite repair`) to rebuild from the newest good backup"
            }
            Error::RowOutOfRange { .. } => {
                "move the cursor onto a row first (go_to_first_row / go_to_next_row) and check its return value"
            }
            Error::ColumnOutOfRange { .. } => {
                "use an index below column_count() or a name from column_names()"
            }
            Error::Closed { .. } => {
                "open the store again, or run the query again for a fresh result set"
            }
            Error::NotFound { .. } => {
                "check the key or store id; get_entries(prefix) lists what exists"
            }
            Error::NotAQuery { .. } => "use execute() for statements that write",
            Error::WrongKey { .. } => {
                "give the key the store was created with (--key or PEERLITE_KEY); a store created without a key is opened without one"
            }
            Error::ConfigChanged { .. } => {
                "open the store with the options it was created with; a security level can be raised but never lowered"
            }
            Error::TooManyObservers { .. } => {
                "unsubscribe observers you no longer need before adding more"
            }
            Error::TypeMismatch { .. } => {
                "read the column with the getter for its stored type, or use get::<Option<T>>() for nullable columns"
            }
            Error::ReadOnly { .. } => "open the store without read_only to write",
            Error::Migration { .. } => {
                "the database kept its old version and data; fix the failing step and open again, it will run again"
            }
            Error::Downgrade { .. } => {
                "open with the newer version, or give a downgrade path (Migration::with_down)"
            }
            Error::ReadOnlyUpgrade { .. } => {
                "open the store writable once so the migration can run"
            }
            Error::ForeignKeyViolation { .. } => {
                "make the migration keep references valid (PRAGMA foreign_key_check shows the rows)"
            }
            Error::Io { .. } => "check free space, permissions and that the directory exists",
            Error::BackupNotFound { .. } => "list the backups with `peerlite backups` (backups())",
            Error::BackupInvalid { .. } => {
                "the backup is damaged; restore an older one (`peerlite backups` lists them) and keep this file for inspection"
            }
            Error::BackupTooNew { .. } => {
                "open the store with the newer schema version first, then restore"
            }
            Error::BackupOfAnotherStore { .. } => {
                "pick a backup of this database, or force it (--force / RestoreRequest::allow_other_store) to replace this database's data"
            }
            Error::Cancelled { .. } => "run it again when you want it to finish",
            Error::SyncSchema { .. } => {
                "fix the sync schema file (`peerlite schema-check FILE --db DB` lists every problem)"
            }
            Error::DistributedTypeMismatch { .. } => {
                "all device-to-device distributed tables of a database use one mode, and it cannot be switched"
            }
            Error::NotDistributed { .. } => {
                "make the table distributed first (set_distributed_tables / `peerlite distribute`)"
            }
            Error::ReadOnlyDeviceTable { .. } => {
                "write to your own table; another device's rows change only on that device"
            }
            Error::NullConflictColumn { .. } => {
                "give every row a globally unique value (a uuid) in the conflict column"
            }
            Error::Protocol { .. } => "update both devices to the same peerlite version",
            Error::IncompatiblePeer { .. } => {
                "pair devices that run the same application and schema version"
            }
            Error::DeviceIdChanged { .. } => {
                "open it with the device home it synced with, or re-identify it (`peerlite sync --reidentify`), which starts a new epoch"
            }
            Error::ResetRunning { .. } => {
                "wait for the running `peerlite reset` (or `peerlite sync --on-reset`) of this store to end, then run it again if it is still needed"
            }
            Error::ResetFailing { .. } => {
                "restore the store's pre-reset backup (`peerlite backups DB` lists it, `peerlite restore DB NAME`) or keep it as it is; the reset record `DB.reset` beside it can then be removed"
            }
            Error::QueryRefused { .. } => {
                "the device holding the data records the asking one at a level below the data's label: there, `peerlite trust remove` and `peerlite trust add --level SLn` with a higher level"
            }
            Error::SyncFailed { .. } => {
                "see the status: a device below the data's security level needs `peerlite trust add --level`; an unreachable one is synced again when it is back"
            }
            Error::Remote { code, .. } => match code {
                17040001 => {
                    "the table is not distributed on that device: run `peerlite distribute DB TABLE` there"
                }
                17040006 => {
                    "that device records this one at a level below the data's label: there, `peerlite trust remove` and `peerlite trust add --level SLn` with a higher level"
                }
                17040011 => {
                    "this device was away longer than that device keeps deletes: re-seed it with `peerlite sync --pull --on-reset recover` or `peerlite reset --device ID --mode recover`"
                }
                17040010 => {
                    "narrow the query: fewer columns (`peerlite remote-query --columns a,b`) or conditions that select fewer rows (`--eq COL=VALUE`)"
                }
                14800011 | 15100003 => {
                    "that device's copy of the store is damaged: run `peerlite repair DB` there (it rebuilds it from its newest verified backup), then query again"
                }
                14800001 => {
                    "check the table and column names: only the synced columns of a distributed table can be queried (`peerlite distribute` lists them)"
                }
                _ => "the other device reported the failure; see its log (`peerlite serve -v`)",
            },
            Error::ResetRequired { .. } => {
                "that device was away longer than this one keeps deletes: it must re-seed from this one (`peerlite sync --pull --on-reset recover` there)"
            }
            Error::ResultTooLarge { .. } => {
                "narrow the query: fewer columns (`peerlite remote-query --columns a,b`) or conditions that select fewer rows (`--eq COL=VALUE`)"
            }
            Error::ReservedBackupName { .. } => {
                "pick another name; automatic backups are managed (and pruned) by peerlite"
            }
            Error::Protected { .. } => {
                "peerlite's own tables, triggers and settings change only through peerlite (`peerlite distribute` makes a table distributed, `peerlite kv` writes key-value entries); reading them is allowed, and a distributed table can gain columns (ALTER TABLE … ADD COLUMN)"
            }
            Error::OwnObjectsDamaged { .. } => {
                "run `peerlite distribute DB TABLE` again (same --mode and --schema) to recreate a table's clock and capture triggers; otherwise restore a backup with `peerlite restore`"
            }
            Error::Sqlite { sqlite, .. } => hint_for_sqlite(sqlite.primary),
        }
    }

    /// True for temporary states (busy, locked) where the same call can simply be retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Sqlite { sqlite, .. } if sqlite.primary == 5 || sqlite.primary == 6)
    }

    /// True when the database file is corrupted or not a database (14800011 / 15100003).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corrupted { .. } => true,
            Error::Migration { source, .. } => source.is_corruption(),
            _ => false,
        }
    }

    /// The same error, reported as coming from the given kind of store. The key-value store is
    /// a relational store underneath; this gives its errors ArkData's KV codes.
    pub fn for_store(mut self, store: StoreKind) -> Self {
        match &mut self {
            Error::InvalidArgument { kind, .. }
            | Error::UnknownTable { kind, .. }
            | Error::UnknownColumn { kind, .. }
            | Error::Corrupted { kind, .. }
            | Error::Closed { kind, .. }
            | Error::ConfigChanged { kind, .. }
            | Error::TooManyObservers { kind, .. } => *kind = store,
            _ => {}
        }
        self
    }

    pub(crate) fn invalid(kind: StoreKind, message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
            kind,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Converts a rusqlite error, classifying corruption; `path` names the database file.
    pub(crate) fn from_sqlite(err: rusqlite::Error, path: &std::path::Path) -> Self {
        match err {
            rusqlite::Error::SqliteFailure(e, msg) => {
                let sqlite = SqliteCode {
                    primary: e.extended_code & 0xff,
                    extended: e.extended_code,
                };
                let message = msg.unwrap_or_else(|| e.to_string());
                if let Some(err) = from_trigger_message(&message) {
                    return err;
                }
                if sqlite.primary == 11 || sqlite.primary == 26 {
                    Error::Corrupted {
                        path: path.to_path_buf(),
                        detail: message,
                        sqlite: Some(sqlite),
                        kind: StoreKind::Relational,
                    }
                } else {
                    Error::Sqlite { sqlite, message }
                }
            }
            rusqlite::Error::SqlInputError {
                error,
                msg,
                sql,
                offset,
            } => Error::Sqlite {
                sqlite: SqliteCode {
                    primary: error.extended_code & 0xff,
                    extended: error.extended_code,
                },
                message: format!("{msg} (at offset {offset} of `{sql}`)"),
            },
            rusqlite::Error::MultipleStatement => Error::invalid(
                StoreKind::Relational,
                "more than one statement; execute them one at a time",
            ),
            rusqlite::Error::InvalidParameterCount(given, expected) => Error::invalid(
                StoreKind::Relational,
                format!("statement takes {expected} parameter(s), {given} given"),
            ),
            other => Error::Sqlite {
                sqlite: SqliteCode {
                    primary: 1,
                    extended: 1,
                },
                message: other.to_string(),
            },
        }
    }
}

/// peerlite's triggers refuse writes with `RAISE(ABORT, 'peerlite:nullconflict:<n>:<table><column>')`,
/// `<n>` being the table name's length in bytes (names may contain `:`).
fn from_trigger_message(message: &str) -> Option<Error> {
    let rest = message.strip_prefix("peerlite:nullconflict:")?;
    let (len, names) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    let (table, column) = (names.get(..len)?, names.get(len..)?);
    Some(Error::NullConflictColumn {
        table: table.to_owned(),
        column: column.to_owned(),
    })
}

/// The message [`from_trigger_message`] reads back.
pub(crate) fn null_conflict_message(table: &str, column: &str) -> String {
    format!("peerlite:nullconflict:{}:{table}{column}", table.len())
}

/// ArkData's codes for SQLite's primary result codes (14800021..=14800034).
fn code_for_sqlite(primary: i32) -> u32 {
    match primary {
        4 => 14800022,  // SQLITE_ABORT
        3 => 14800023,  // SQLITE_PERM
        5 => 14800024,  // SQLITE_BUSY
        6 => 14800025,  // SQLITE_LOCKED
        7 => 14800026,  // SQLITE_NOMEM
        8 => 14800027,  // SQLITE_READONLY
        10 => 14800028, // SQLITE_IOERR
        13 => 14800029, // SQLITE_FULL
        14 => 14800030, // SQLITE_CANTOPEN
        18 => 14800031, // SQLITE_TOOBIG
        19 => 14800032, // SQLITE_CONSTRAINT
        20 => 14800033, // SQLITE_MISMATCH
        21 => 14800034, // SQLITE_MISUSE
        11 | 26 => 14800011,
        _ => 14800021, // SQLITE_ERROR and anything else
    }
}

fn hint_for_sqlite(primary: i32) -> &'static str {
    match primary {
        5 | 6 => "another connection holds the lock; retry the call",
        7 => "free memory and retry",
        8 => "the file or directory is read-only; check permissions",
        10 => "a disk I/O error occurred; check the disk and free space, then retry",
        13 => "the disk is full; free space and retry (nothing was committed)",
        14 => "check that the directory exists and is writable",
        18 => "the value is larger than SQLite accepts; store it in smaller pieces",
        19 => {
            "a constraint (UNIQUE, NOT NULL, CHECK, FOREIGN KEY) rejected the change; nothing was written"
        }
        20 => "the value's type does not fit the column",
        _ => "check the SQL statement and its parameters",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_and_rdb_codes_differ_for_the_same_condition() {
        let rdb = Error::Corrupted {
            path: "x".into(),
            detail: String::new(),
            sqlite: None,
            kind: StoreKind::Relational,
        };
        assert_eq!(rdb.code(), 14800011);
        assert_eq!(rdb.for_store(StoreKind::KeyValue).code(), 15100003);
        let closed = Error::Closed {
            what: "store",
            kind: StoreKind::KeyValue,
        };
        assert_eq!(closed.code(), 15100005);
    }

    #[test]
    fn sqlite_codes_map_to_arkdata_codes_and_busy_is_retryable() {
        let busy = Error::Sqlite {
            sqlite: SqliteCode {
                primary: 5,
                extended: 5,
            },
            message: "busy".into(),
        };
        assert_eq!(busy.code(), 14800024);
        assert!(busy.is_retryable());
        let constraint = Error::Sqlite {
            sqlite: SqliteCode {
                primary: 19,
                extended: 2067,
            },
            message: "unique".into(),
        };
        assert_eq!(constraint.code(), 14800032);
        assert_eq!(constraint.sqlite_code(), Some(2067));
        assert!(!constraint.is_retryable());
    }

    #[test]
    fn migration_error_keeps_the_inner_sqlite_code() {
        let inner = Error::Sqlite {
            sqlite: SqliteCode {
                primary: 1,
                extended: 1,
            },
            message: "x".into(),
        };
        let err = Error::Migration {
            step: "0002_x".into(),
            from: 1,
            to: 2,
            source: Box::new(inner),
        };
        assert_eq!(err.code(), 17010001);
        assert_eq!(err.sqlite_code(), Some(1));
        assert!(err.to_string().contains("0002_x"));
    }
}
