//! `peerlite backups DB` (or `--kv STORE_DIR STORE_ID`): the store's backups, newest first —
//! every file in its backup folder, those without a (readable) manifest as not verified with
//! why. The store itself is not opened: the backups of a damaged or lost store are listed too.

use super::print_json;
use super::target::KvTarget;
use crate::Global;
use crate::output::table;

/// Arguments of `peerlite backups`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// DB (omit with --kv).
    #[arg(value_name = "DB")]
    positionals: Vec<String>,
    #[command(flatten)]
    target: KvTarget,
}

/// Runs `peerlite backups`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let location = args.target.locate_only(args.positionals)?;
    let backups = location.backups(global)?;
    if global.json {
        let list: Vec<serde_json::Value> = backups
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name, "path": b.path, "created": b.created, "bytes": b.size_bytes,
                    "version": b.version, "verified": b.verified, "automatic": b.automatic,
                    "encrypted": b.encrypted, "checksum": b.checksum, "problem": b.problem,
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
        return Ok(());
    }
    let header = [
        "name",
        "created",
        "bytes",
        "version",
        "verified",
        "automatic",
        "problem",
    ]
    .map(String::from);
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|b| {
            vec![
                b.name.clone(),
                b.created.clone(),
                b.size_bytes.to_string(),
                b.version.to_string(),
                b.verified.to_string(),
                b.automatic.to_string(),
                b.problem.clone().unwrap_or_default(),
            ]
        })
        .collect();
    println!("{}", table(&header, &rows));
    Ok(())
}
