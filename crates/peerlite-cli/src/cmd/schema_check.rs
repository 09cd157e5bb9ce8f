//! `peerlite schema-check FILE --db DB`: validates a sync schema file against a database
//! without changing anything. One line per problem on stdout — `error[CODE] TABLE.COLUMN:
//! rule`, warnings as `warning: …` — and exit 0 when the schema is valid (warnings allowed),
//! 2 when it is not.

use std::path::PathBuf;

use peerlite::schema::{Severity, SyncSchema};

use super::{open_existing_read_only, print_json};
use crate::{Exit, Global};

/// Arguments of `peerlite schema-check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sync_schema.json.
    file: PathBuf,
    /// The database it describes (its file name without `.db` is the schema's dbName).
    #[arg(long, value_name = "DB")]
    db: PathBuf,
}

/// Runs `peerlite schema-check`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let problems = match SyncSchema::read(&args.file) {
        Ok(schema) => open_existing_read_only(global, &args.db)?.check_sync_schema(&schema)?,
        Err(peerlite::Error::SyncSchema { problems }) => problems,
        Err(e) => return Err(e.into()),
    };
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if global.json {
        let list: Vec<serde_json::Value> = problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "severity": if p.severity == Severity::Error { "error" } else { "warning" },
                    "code": p.code(), "rule": format!("{:?}", p.rule), "table": p.table,
                    "column": p.column, "message": p.message,
                })
            })
            .collect();
        print_json(&serde_json::json!({ "valid": errors == 0, "problems": list }));
    } else {
        for p in &problems {
            println!("{p}");
        }
        eprintln!(
            "{}: {errors} error(s), {} warning(s)",
            if errors == 0 { "valid" } else { "invalid" },
            problems.len() - errors
        );
    }
    if errors > 0 {
        return Err(Exit(2).into());
    }
    Ok(())
}
