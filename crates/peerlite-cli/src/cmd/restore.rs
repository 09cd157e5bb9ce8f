//! `peerlite restore DB NAME_OR_PATH [--force]` (or `--kv STORE_DIR STORE_ID NAME_OR_PATH`).

use peerlite::RestoreRequest;

use super::print_json;
use super::target::{Bar, KvTarget, Mode};
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
    let store = location.open(global, Mode::Recovery)?;
    let bar = Bar::new("restore");
    let mut progress = |p| bar.update(p);
    let mut request = RestoreRequest::new(source.as_str())
        .pages_per_step(args.step_pages)
        .on_progress(&mut progress);
    if args.force {
        request = request.allow_other_store();
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
