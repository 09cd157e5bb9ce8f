//! `peerlite sql DB SQL... [--file F]`: runs the statements — from the arguments, from a file,
//! or from standard input (`-`) — on a reader when every one of them only reads (they answer
//! while another process writes), else all in one transaction. Each query's rows stream out as
//! SQLite produces them: an aligned table, or with `--json` one line per query,
//! `{"columns":[…],"rows":[[…],…]}` (see `output`).

use std::io::Read;
use std::path::{Path, PathBuf};

use peerlite::ScriptSink;

use super::{NewStore, store_config};
use crate::output::{JsonRows, TextRows};
use crate::{Global, UsageError};

/// Arguments of `peerlite sql`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database file (created if missing; removed again if the command fails).
    db: PathBuf,
    /// SQL statements; several per argument are allowed. `-` reads statements from standard
    /// input.
    sql: Vec<String>,
    /// Also run the statements in this file (`-`: standard input), after the arguments.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Runs `peerlite sql`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let scripts = read_scripts(&args)?;
    let scripts: Vec<&str> = scripts.iter().map(String::as_str).collect();
    let stdout = std::io::stdout().lock();
    let out = std::io::BufWriter::with_capacity(64 * 1024, stdout);
    let mut sink: Box<dyn ScriptSink> = if global.json {
        Box::new(JsonRows::new(out))
    } else {
        Box::new(TextRows::new(out))
    };
    NewStore::at(&args.db).run(
        || peerlite::RdbStore::open(store_config(global, &args.db)),
        |store| store.run_script(&scripts, sink.as_mut()),
    )?;
    Ok(())
}

/// The scripts to run, in order: the arguments (`-` is standard input), then `--file`.
fn read_scripts(args: &Args) -> anyhow::Result<Vec<String>> {
    let stdin_uses = args.sql.iter().filter(|s| *s == "-").count()
        + usize::from(args.file.as_deref() == Some(Path::new("-")));
    if stdin_uses > 1 {
        return Err(UsageError("standard input (`-`) can be read only once".into()).into());
    }
    let mut scripts = Vec::new();
    for sql in &args.sql {
        scripts.push(if sql == "-" {
            read_stdin()?
        } else {
            sql.clone()
        });
    }
    if let Some(file) = &args.file {
        scripts.push(if file == Path::new("-") {
            read_stdin()?
        } else {
            std::fs::read_to_string(file).map_err(|e| {
                UsageError(format!("cannot read the SQL file {}: {e}", file.display()))
            })?
        });
    }
    if scripts.is_empty() {
        return Err(UsageError(
            "give SQL statements as arguments, `-` for standard input, or --file FILE".into(),
        )
        .into());
    }
    Ok(scripts)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| UsageError(format!("cannot read SQL from standard input: {e}")))?;
    Ok(text)
}
