//! The relational store and what it is built from: configuration, connections, predicates,
//! result sets, transactions and change observers.

pub(crate) mod checkpointer;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod connection;
pub(crate) mod cursor;
pub(crate) mod guard;
pub(crate) mod layers;
pub(crate) mod lexer;
pub(crate) mod meta;
pub(crate) mod observer;
pub(crate) mod pool;
pub(crate) mod predicates;
pub(crate) mod rdb;
pub(crate) mod read;
pub(crate) mod reset_lock;
pub(crate) mod result_set;
pub(crate) mod schema;
pub(crate) mod script;
pub(crate) mod transaction;
pub(crate) mod writer;

pub use config::{Durability, EncryptionKey, SecurityLevel, StoreConfig};
pub use observer::{DEFAULT_MAX_OBSERVERS, ObserverId, SubscribeType};
pub use predicates::{DeviceFilter, RdbPredicates};
pub use rdb::RdbStore;
pub use result_set::{ColumnIndex, ResultSet};
pub use script::{ScriptSink, StatementOutput};
pub use transaction::{ConflictResolution, Transaction};
