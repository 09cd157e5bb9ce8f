//! `peerlite restore DB NAME_OR_PATH [--force] [--migrations DIR] [--full-check]` (or `--kv
//! STORE_DIR STORE_ID NAME_OR_PATH`).
//!
//! The backup is proven intact first: its checksum against a manifest written after it was
//! checked, and `integrity_check` too with `--full-check` or when the manifest does not say
//! it was checked.
//!
//! A store that opens is restored in one transaction after a `pre-restore` safety copy (or,
//! when it cannot be copied page by page, its files are copied into quarantine). A store that
//! cannot be opened at all — a damaged header, a file cut short, a lost file, damaged identity
//! rows, a key that cannot be proven on its damaged file — is restored by the repair
//! machinery: its files are quarantined (never deleted), what is readable is salvaged, and the
//! chosen backup (verified first, with the key) is put in its place. An older backup is
//! upgraded with `--migrations DIR` (the `NNNN_name.sql` files `peerlite migrate` applies).

use std::path::PathBuf;

use peerlite::{Migrations, RebuiltType, RestoreRequest};

use super::print_json;
use super::target::{Bar, KvTarget, Location, Mode};
use crate::{Global, UsageError};

/// Arguments of `peerlite restore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB NAME_OR_PATH — or, with --kv, just NAME_OR_PATH.
    #[arg(value_name = "DB NAME_OR_PATH")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
    /// Restore a backup taken from another database, replacing this one's data.
    #[arg(long)]
    force: bool,
    /// Upgrade a backup older than the store with the NNNN_name.sql migrations of DIR.
    #[arg(long, value_name = "DIR")]
    migrations: Option<PathBuf>,
    /// Run the full integrity_check of the backup even when its checksum matches a manifest
    /// written after the backup was checked (it always runs when the manifest does not say so).
    #[arg(long)]
    full_check: bool,
    /// Pages copied per step.
    #[arg(long, hide = true, default_value_t = 1024)]
    step_pages: i32,
}

/// Runs `peerlite restore`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let (location, rest) = args.target.locate(args.positionals)?;
    let [source] = rest.as_slice() else {
        return Err(UsageError("give exactly one backup name or path".into()).into());
    };
    let mut migrations = match &args.migrations {
        Some(_) if matches!(location, Location::Kv { .. }) => {
            return Err(UsageError(
                "--migrations is for a database: a key-value store upgrades itself".into(),
            )
            .into());
        }
        Some(dir) => Some(Migrations::from_dir(dir)?),
        None => None,
    };
    let store = match location.open(global, Mode::Recovery) {
        Ok(store) => store,
        Err(e) if cannot_be_opened(&e, global) => {
            let store = location.open_rebuilding_from(global, source, migrations.as_mut())?;
            match store.rebuilt() {
                (RebuiltType::Repaired, Some(report)) if installed(&report, &location, source) => {
                    return print_over_damaged(global, &location, &store, report);
                }
                // Healthy by now (another process mended it), or a pending repair was finished
                // with another backup: an ordinary restore of the one asked for.
                _ => store,
            }
        }
        Err(e) => return Err(e.into()),
    };
    let bar = Bar::new("restore");
    let mut progress = |p| bar.update(p);
    let mut request = RestoreRequest::new(source.as_str())
        .pages_per_step(args.step_pages)
        .on_progress(&mut progress);
    if args.force {
        request = request.allow_other_store();
    }
    if args.full_check {
        request = request.full_check();
    }
    if let Some(m) = migrations.as_mut() {
        request = request.migrations(m);
    }
    let report = store.restore_with(request)?;
    bar.finish();
    if global.json {
        print_json(&serde_json::json!({
            "restored_from": report.restored_from,
            "backup_version": report.backup_version,
            "version": report.version,
            "pages": report.pages,
            "pre_restore_backup": report.pre_restore_backup,
            "salvage": null,
            "earlier_pre_restore": report.earlier_pre_restore,
            "quarantine": report.quarantine,
            "migrated": report.migration.as_ref().map(|m| m.steps.clone()),
        }));
    } else {
        println!(
            "restored {} (version {})",
            report.restored_from.display(),
            report.version
        );
        if let Some(safety) = &report.pre_restore_backup {
            println!("the replaced data is kept in {}", safety.display());
        }
        if let Some(earlier) = &report.earlier_pre_restore {
            println!(
                "the data an earlier restore replaced is kept in {}",
                earlier.display()
            );
        }
        if let Some(q) = &report.quarantine {
            println!(
                "the replaced database was damaged; its files are kept in {}",
                q.display()
            );
        }
        if let Some(m) = &report.migration {
            println!("upgraded {} → {}", m.from, m.to);
        }
    }
    Ok(())
}

/// Whether the store's open failed in a way only replacing it mends: damage, a lost file,
/// damaged identity rows, or (with a key given) a key its damaged file cannot prove — the
/// chosen backup is then verified with that key before anything is touched.
fn cannot_be_opened(e: &peerlite::Error, global: &Global) -> bool {
    e.is_corruption()
        || matches!(e, peerlite::Error::OwnObjectsDamaged { .. })
        || (matches!(e, peerlite::Error::WrongKey { .. }) && global.key.is_some())
}

/// Whether the rebuild put the backup `source` in place (not another one: a repair that was
/// pending is finished with the newest verified backup).
fn installed(report: &peerlite::RepairReport, location: &Location, source: &str) -> bool {
    let asked = if source.contains('/') || source.contains('\\') {
        PathBuf::from(source)
    } else {
        peerlite::backup_dir_of(&location.db_path()).join(source)
    };
    let same = |a: &std::path::Path, b: &std::path::Path| match (
        std::fs::canonicalize(a),
        std::fs::canonicalize(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    report
        .backup_path
        .as_deref()
        .is_some_and(|p| same(p, &asked))
}

/// The report of a restore over a store that could not be opened.
fn print_over_damaged(
    global: &Global,
    location: &Location,
    store: &super::target::Opened,
    report: peerlite::RepairReport,
) -> anyhow::Result<()> {
    let version = store.version()?;
    let listed = location
        .backups(global)?
        .into_iter()
        .find(|b| Some(&b.path) == report.backup_path.as_ref());
    let salvage = &report.salvage;
    if global.json {
        print_json(&serde_json::json!({
            "restored_from": report.backup_path,
            "backup_version": listed.as_ref().map(|b| b.version),
            "version": version,
            "pages": listed.as_ref().map(|b| b.page_count),
            "pre_restore_backup": serde_json::Value::Null,
            "salvage": salvage.path,
            "earlier_pre_restore": serde_json::Value::Null,
            "quarantine": report.quarantine,
            "migrated": serde_json::Value::Null,
        }));
        return Ok(());
    }
    let from = report
        .backup_path
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string());
    println!("restored {from} (version {version})");
    println!(
        "the replaced database could not be opened; its files are kept in {}",
        report.quarantine.display()
    );
    match (&salvage.error, &salvage.path) {
        (Some(why), _) => println!("salvage failed (the restore went on without it): {why}"),
        (None, Some(path)) => println!(
            "salvaged {} of its rows into {}",
            salvage.rows,
            path.display()
        ),
        (None, None) => println!("none of its rows could be read"),
    }
    Ok(())
}
