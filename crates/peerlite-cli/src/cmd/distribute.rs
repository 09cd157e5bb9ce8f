//! `peerlite distribute DB TABLE... [--mode collaboration|single-version] [--schema FILE]
//! [--auto-sync]`: makes tables distributed (existing rows are captured and will sync).
//! Single-version tables need the sync schema file; a schema that breaks a rule prints one
//! `error[CODE] TABLE.COLUMN: rule` line per problem and exits 2, distributing nothing.
//! `--auto-sync` makes a `peerlite serve` of the database push the tables' commits to the
//! connected devices shortly after they commit (distributing again without it turns it off).

use std::path::PathBuf;

use peerlite::changes::{DistributedConfig, DistributedTableType, DistributedType};
use peerlite::schema::SyncSchema;

use super::{open_existing, print_json};
use crate::{Global, UsageError};

/// Distribution mode.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Each device's rows in a table of their own (ArkData's default).
    Collaboration,
    /// Every device's rows merged into one table by the schema's conflict column.
    SingleVersion,
}

/// Arguments of `peerlite distribute`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file.
    db: PathBuf,
    /// Tables to distribute.
    #[arg(required = true)]
    tables: Vec<String>,
    /// Device collaboration (default) or single version.
    #[arg(long, value_enum, default_value = "collaboration")]
    mode: Mode,
    /// The sync_schema.json (required for single-version; ignored otherwise).
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Push the tables' commits to connected devices shortly after commit while
    /// `peerlite serve` serves the database (kept in the database).
    #[arg(long)]
    auto_sync: bool,
}

/// Runs `peerlite distribute`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let config = match (args.mode, &args.schema) {
        (Mode::SingleVersion, None) => {
            return Err(UsageError(
                "--mode single-version needs --schema FILE (the sync_schema.json)".into(),
            )
            .into());
        }
        (Mode::SingleVersion, Some(file)) => DistributedConfig::single_version(read_schema(file)?),
        (Mode::Collaboration, _) => DistributedConfig::default(),
    };
    let config = DistributedConfig {
        auto_sync: args.auto_sync,
        ..config
    };
    let store = open_existing(global, &args.db)?;
    let tables: Vec<&str> = args.tables.iter().map(String::as_str).collect();
    if let Err(e) = store.set_distributed_tables(&tables, DistributedType::Device, &config) {
        print_problems(&e);
        return Err(e.into());
    }
    let metas: Vec<_> = store
        .distributed_tables()?
        .into_iter()
        .filter(|m| args.tables.contains(&m.name))
        .collect();
    if global.json {
        let list: Vec<serde_json::Value> = metas
            .iter()
            .map(|m| {
                let mut entry = serde_json::json!({
                    "table": m.name, "mode": mode_name(m.mode), "identity": m.identity,
                    "columns": m.columns, "schema_version": m.schema_version,
                });
                // Only with --auto-sync: the output without it stays what scripts know.
                if m.auto_sync {
                    entry["auto_sync"] = serde_json::Value::Bool(true);
                }
                entry
            })
            .collect();
        print_json(&serde_json::json!({ "distributed": list }));
    } else {
        for m in &metas {
            println!(
                "distributed {} ({}, identity {}, syncs {}{})",
                m.name,
                mode_name(m.mode),
                m.identity,
                m.columns.join(", "),
                if m.auto_sync { "; auto-sync" } else { "" }
            );
        }
    }
    Ok(())
}

/// Reads a sync schema file; a file that does not parse lists its problem like any other.
pub fn read_schema(file: &std::path::Path) -> anyhow::Result<SyncSchema> {
    SyncSchema::read(file).map_err(|e| {
        print_problems(&e);
        e.into()
    })
}

/// Every problem of a rejected schema, one line each, on stderr — but the one the usual
/// `error[CODE]: …` line that follows already names.
fn print_problems(e: &peerlite::Error) {
    if let peerlite::Error::SyncSchema { problems } = e {
        let named = problems
            .iter()
            .position(|p| p.severity == peerlite::schema::Severity::Error);
        for (i, p) in problems.iter().enumerate() {
            if Some(i) != named {
                eprintln!("{p}");
            }
        }
    }
}

/// The mode's name on the command line.
pub fn mode_name(mode: DistributedTableType) -> &'static str {
    match mode {
        DistributedTableType::DeviceCollaboration => "collaboration",
        DistributedTableType::SingleVersion => "single-version",
    }
}
