//! `peerlite migrate DB DIR [--dry-run]`: applies the pending `NNNN_name.sql` files of DIR in
//! one transaction and prints `from → to`, then one line per step. With `--dry-run` every step
//! runs and is rolled back, which proves the migration works without changing anything.

use std::path::PathBuf;

use peerlite::{Migrations, RdbStore};

use super::{NewStore, print_json, store_config};
use crate::{Global, UsageError};

/// Arguments of `peerlite migrate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file (created if missing; removed again if the migration fails).
    db: PathBuf,
    /// Directory of NNNN_name.sql migrations (optional NNNN_name.down.sql).
    dir: PathBuf,
    /// Run every step, then roll back.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `peerlite migrate`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let mut migrations = Migrations::from_dir(&args.dir)?;
    if migrations.latest() == 0 {
        return Err(UsageError(format!(
            "no NNNN_name.sql migrations in {}",
            args.dir.display()
        ))
        .into());
    }
    let target = migrations.latest();
    let report = NewStore::at(&args.db).run(
        || RdbStore::open(store_config(global, &args.db)),
        |store| store.migrate(target, &mut migrations, args.dry_run),
    )?;
    if global.json {
        print_json(&serde_json::json!({
            "from": report.from,
            "to": target,
            "steps": report.steps,
            "dry_run": report.dry_run,
        }));
        return Ok(());
    }
    let note = match (report.steps.is_empty(), report.dry_run) {
        (true, _) => " (up to date)",
        (false, true) => " (dry run: every step ran and was rolled back)",
        (false, false) => "",
    };
    println!("{} → {target}{note}", report.from);
    for step in &report.steps {
        println!("  {step}");
    }
    Ok(())
}
