//! `peerlite check DB [--full]` (or `--kv STORE_DIR STORE_ID`): prints `ok` and exits 0; a
//! corrupted database prints `error[14800011]` (15100003 for a key-value store) and exits 3.
//! `--full` also verifies peerlite's own objects (identity rows, registry, each distributed
//! table's clock and capture triggers): a damaged set prints `error[17050002]` naming each
//! object, and exits 3 too — the check found damage.

use peerlite::CheckMode;

use super::target::{KvTarget, Mode};
use crate::{Exit, Global, UsageError};

/// Arguments of `peerlite check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB (omit with --kv).
    #[arg(value_name = "DB")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
    /// integrity_check (and SQLCipher's page HMACs) instead of quick_check.
    #[arg(long)]
    full: bool,
}

/// Runs `peerlite check`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let (location, rest) = args.target.locate(args.positionals)?;
    if !rest.is_empty() {
        return Err(UsageError(format!("unexpected arguments {rest:?}")).into());
    }
    let mode = if args.full {
        CheckMode::Full
    } else {
        CheckMode::Quick
    };
    let result = location
        .open(global, Mode::Recovery)
        .and_then(|store| store.check(mode));
    match result {
        Ok(()) => {
            if global.json {
                super::print_json(&serde_json::json!({ "ok": true }));
            } else {
                println!("ok");
            }
            Ok(())
        }
        Err(e) if e.is_corruption() || matches!(e, peerlite::Error::OwnObjectsDamaged { .. }) => {
            eprintln!("error[{}]: {e}", e.code());
            eprintln!("hint: {}", crate::hint::for_error(&e, "check"));
            Err(Exit(3).into())
        }
        Err(e) => Err(e.into()),
    }
}
