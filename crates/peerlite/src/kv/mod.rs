//! The key-value store: ArkData's `KVManager` / `SingleKVStore`, built on the relational store.

mod manager;
mod result_set;
mod store;
mod sync;
mod value;

pub use manager::{KvManager, KvStoreType, Options};
pub use result_set::{Entry, KvResultSet};
pub(crate) use store::KV_TABLE;
pub use store::{ChangeNotification, KvStore, KvTransaction, LOCAL_DEVICE};
pub use value::{KvValue, MAX_KEY_BYTES, MAX_VALUE_BYTES};
