//! `peerlite kv STORE_DIR STORE_ID put KEY VALUE | get KEY | delete KEY | list [--prefix P]`.

use std::path::PathBuf;

use peerlite::{KvManager, KvValue, Options};

use super::print_json;
use crate::output::kv_json;
use crate::{Global, UsageError};

/// Arguments of `peerlite kv`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding the stores (STORE_ID.db files).
    store_dir: PathBuf,
    /// The store's id (letters, digits, underscores).
    store_id: String,
    #[command(subcommand)]
    op: Op,
}

#[derive(clap::Subcommand, Debug)]
enum Op {
    /// Store VALUE under KEY (creates the store if needed).
    Put {
        /// The key (at most 1024 bytes).
        key: String,
        /// The value (at most 4 MiB).
        value: String,
        /// How to read VALUE: string, integer, float, bool or bytes (hex).
        #[arg(long = "type", default_value = "string")]
        ty: String,
    },
    /// Print the value under KEY.
    Get {
        /// The key.
        key: String,
    },
    /// Remove KEY.
    Delete {
        /// The key.
        key: String,
    },
    /// Print the entries, in key order.
    List {
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

fn entry_json(key: &str, value: &KvValue) -> serde_json::Value {
    serde_json::json!({ "key": key, "value": kv_json(value), "type": value.type_name() })
}

/// Runs `peerlite kv`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let manager = KvManager::at(&args.store_dir)?;
    let mut options = Options {
        create_if_missing: matches!(args.op, Op::Put { .. }),
        ..Options::default()
    };
    if let Some(key) = &global.key {
        options = options.encrypted(key.as_str());
    }
    let store = manager.get_kv_store(&args.store_id, options)?;
    match args.op {
        Op::Put { key, value, ty } => {
            let parsed = KvValue::parse(&ty, &value).ok_or_else(|| {
                UsageError(format!(
                    "{value:?} is not a valid {ty} (types: string, integer, float, bool, bytes)"
                ))
            })?;
            store.put(&key, parsed)?;
        }
        Op::Get { key } => {
            let value = store.get(&key)?;
            if global.json {
                print_json(&entry_json(&key, &value));
            } else {
                println!("{value}");
            }
        }
        Op::Delete { key } => {
            if !store.delete(&key)? {
                return Err(peerlite::Error::NotFound {
                    what: format!("key {key:?}"),
                }
                .into());
            }
        }
        Op::List { prefix } => {
            let entries = store.get_entries(&prefix)?;
            if global.json {
                print_json(&serde_json::Value::Array(
                    entries
                        .iter()
                        .map(|e| entry_json(&e.key, &e.value))
                        .collect(),
                ));
            } else {
                for e in entries {
                    println!("{}\t{}", e.key, e.value);
                }
            }
        }
    }
    Ok(())
}
