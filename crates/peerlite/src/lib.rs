//! # peerlite
//!
//! Local data that survives everything and follows the user: a relational store and a
//! key-value store on SQLite (SQLCipher for encryption at rest), with versioned open and
//! data-keeping migrations, online backup and self-repair, and peer-to-peer sync between the
//! devices of one user. Modelled on HarmonyOS ArkData, SQLite's Online Backup API, Realm's
//! client reset and Android's `SQLiteOpenHelper`.
//!
//! ```
//! use peerlite::{bucket, KvManager, Options, RdbPredicates, RdbStore, StoreConfig};
//!
//! let dir = tempfile::tempdir()?;
//!
//! // Relational store.
//! let store = RdbStore::open(StoreConfig::new(dir.path().join("app.db")))?;
//! store.execute("CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT NOT NULL)", &[])?;
//! store.insert("note", &bucket! { "text" => "hello" })?;
//! let rs = store.query(&RdbPredicates::new("note").like("text", "h%"), &["text"])?;
//! assert_eq!(rs.row_count()?, 1);
//!
//! // Key-value store.
//! let kv = KvManager::new(dir.path(), "com.example.app")?.get_kv_store("prefs", Options::default())?;
//! kv.put("theme", "dark")?;
//! assert_eq!(kv.get("theme")?.to_string(), "dark");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod backup;
pub mod changes;
pub mod error;
pub mod kv;
pub mod open;
pub mod repair;
pub mod reset;
pub mod schema;
pub mod store;
pub mod sync;
pub mod value;

pub use backup::{
    AutoBackup, BackupInfo, BackupRequest, DeleteResult, Progress, RestoreReport, RestoreRequest,
    RestoreTimings, backup_dir_of,
};
pub use error::{Error, Result, SqliteCode, StoreKind};
pub use kv::{
    ChangeNotification, Entry, KvManager, KvResultSet, KvStore, KvStoreType, KvTransaction,
    KvValue, Options,
};
pub use open::{
    ColumnMapping, Migration, MigrationReport, Migrations, NoMigrations, OpenCallbacks,
    RebuildReport,
};
pub use repair::{CheckMode, RebuiltType, RepairReport, SalvageReport};
pub use store::{
    ColumnIndex, ConflictResolution, DeviceFilter, Durability, EncryptionKey, ObserverId,
    RdbPredicates, RdbStore, ResultSet, ScriptSink, SecurityLevel, StatementOutput, StoreConfig,
    SubscribeType, Transaction,
};
pub use value::{FromValue, Value, ValuesBucket};
