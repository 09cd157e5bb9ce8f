//! `peerlite kv STORE_DIR STORE_ID put KEY [VALUE | --file F] | get KEY | delete KEY |
//! list [--prefix P]`. Only `put` creates anything (the directory and the store), and a `put`
//! that fails removes what it created. Reads open the store without the write lock, so they
//! answer while another process writes.

use std::io::Read;
use std::path::{Path, PathBuf};

use peerlite::{KvManager, KvStore, KvValue};

use super::{NewStore, print_json};
use crate::output::kv_json;
use crate::{Global, UsageError};

/// The largest value a store takes (4 MiB); a file is read up to one byte past it, so a
/// larger one is refused by the store with its code without being read whole.
const MAX_VALUE_BYTES: u64 = 4 * 1024 * 1024;

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
    /// Store VALUE (or the content of --file) under KEY; creates the store if needed.
    Put {
        /// The key (at most 1024 bytes).
        key: String,
        /// The value (at most 4 MiB); omit it with --file.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from this file (`-`: standard input), up to 4 MiB; with
        /// `--type bytes` the file's bytes as they are, otherwise its text.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// How to read the value: string, integer, float, bool or bytes (hex in VALUE).
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
    if let Op::Put {
        key,
        value,
        file,
        ty,
    } = &args.op
    {
        // The value is read and checked before anything is created.
        let value = parse_value(ty, value.as_deref(), file.as_deref())?;
        put(global, &args, key, value)?;
        if global.json {
            print_json(&serde_json::json!({ "key": key, "result": "stored" }));
        }
        return Ok(());
    }
    let manager = super::existing_kv_manager(&args.store_dir, &args.store_id)?;
    let store = manager.get_kv_store(
        &args.store_id,
        super::level::kv_options(global, &args.store_dir, &args.store_id, false),
    )?;
    match args.op {
        Op::Put { .. } => {}
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
            if global.json {
                print_json(&serde_json::json!({ "key": key, "result": "deleted" }));
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

/// Stores the value; a store (and directory) this put created is removed when it fails.
fn put(global: &Global, args: &Args, key: &str, value: KvValue) -> peerlite::Result<()> {
    let dir_existed = args.store_dir.symlink_metadata().is_ok();
    let db = args.store_dir.join(format!("{}.db", args.store_id));
    peerlite::repair::refuse_lost_store(&db)
        .map_err(|e| e.for_store(peerlite::StoreKind::KeyValue))?;
    let new = NewStore::at(&db);
    let manager = KvManager::at(&args.store_dir)?;
    let result = manager
        .get_kv_store(
            &args.store_id,
            super::level::kv_options(global, &args.store_dir, &args.store_id, true),
        )
        // Captured from the first write, so each entry carries the time it was written: a
        // store made syncable only at its first sync stamped every entry with that moment,
        // and an older write on one device beat a newer one on another.
        .and_then(|store| store.enable_sync().map(|()| store))
        .and_then(|store| store.put(key, value).map(|()| store));
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let store_is_empty = |s: &KvStore| s.get_result_size("").is_ok_and(|n| n == 0);
            let empty = manager
                .get_kv_store(
                    &args.store_id,
                    super::level::kv_options(global, &args.store_dir, &args.store_id, false),
                )
                .map_or(true, |s| store_is_empty(&s));
            let _ = manager.close_kv_store(&args.store_id);
            if empty {
                new.discard();
            }
            if !dir_existed {
                // Only when empty: remove_dir refuses a directory with anything in it.
                let _ = std::fs::remove_dir(&args.store_dir);
            }
            Err(e)
        }
    }
}

/// The value of `kv put`: from VALUE or from --file, read as `ty`.
fn parse_value(ty: &str, value: Option<&str>, file: Option<&Path>) -> anyhow::Result<KvValue> {
    const TYPES: &str = "types: string, integer, float, bool, bytes";
    if !["string", "integer", "float", "bool", "bytes"].contains(&ty) {
        return Err(UsageError(format!("unknown --type {ty:?} ({TYPES})")).into());
    }
    let from_text = |text: &str| {
        KvValue::parse(ty, text)
            .ok_or_else(|| UsageError(format!("{text:?} is not a valid {ty} ({TYPES})")))
    };
    let (Some(file), None) = (file, value) else {
        return Ok(from_text(value.unwrap_or_default())?);
    };
    let bytes = read_limited(file)?;
    match ty {
        "bytes" => Ok(KvValue::Bytes(bytes)),
        _ => {
            let text = String::from_utf8(bytes).map_err(|_| {
                UsageError(format!(
                    "{} is not UTF-8 text: store it with --type bytes",
                    file.display()
                ))
            })?;
            match ty {
                "string" => Ok(KvValue::String(text)),
                _ => Ok(from_text(text.trim())?),
            }
        }
    }
}

/// Reads a value file (`-`: standard input) up to one byte past the limit.
fn read_limited(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let read = if file == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_VALUE_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(MAX_VALUE_BYTES + 1).read_to_end(&mut bytes))
    };
    read.map_err(|e| {
        UsageError(format!(
            "cannot read the value from {}: {e}",
            file.display()
        ))
    })?;
    Ok(bytes)
}
