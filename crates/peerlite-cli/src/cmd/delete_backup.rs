//! `peerlite delete-backup DB NAME...` (or `--kv STORE_DIR STORE_ID NAME...`): a line per name
//! with its result; exits 2 when any name failed.

use super::print_json;
use super::target::{KvTarget, Mode};
use crate::{Exit, Global, UsageError};

/// Arguments of `peerlite delete-backup`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB NAME... — or, with --kv, just NAME...
    #[arg(value_name = "DB NAME")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
}

/// Runs `peerlite delete-backup`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let (location, names) = args.target.locate(args.positionals)?;
    if names.is_empty() {
        return Err(UsageError("give at least one backup name".into()).into());
    }
    let store = location.open(global, Mode::Recovery)?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let results = store.delete_backup(&refs);
    let failed = results.iter().any(|r| r.result.is_err());
    if global.json {
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match &r.result {
                Ok(()) => serde_json::json!({ "name": r.name, "result": "deleted" }),
                Err(e) => serde_json::json!({ "name": r.name, "result": { "code": e.code(), "message": e.to_string() } }),
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
    } else {
        for r in &results {
            match &r.result {
                Ok(()) => println!("{}: deleted", r.name),
                Err(e) => println!("{}: error[{}] {e}", r.name, e.code()),
            }
        }
    }
    if failed {
        return Err(Exit(2).into());
    }
    Ok(())
}
