//! `peerlite remote-query --home H DB --device ID --table T [--columns a,b] [--eq COL=VALUE]...
//! [--json]`: runs a query on another device's copy of a distributed table of the store DB
//! names (the store with that file name there), validated and capped (4 MiB) there, and
//! prints the rows like `peerlite sql`: an aligned table, or with `--json`
//! `{"columns":[…],"rows":[[…],…]}`.

use std::path::PathBuf;
use std::time::Duration;

use peerlite::{RdbPredicates, ScriptSink};

use super::net::{
    HomeArg, NodeArgs, net_error, node, parse_device, parse_eq, refuse_own_id, runtime,
};
use crate::output::{JsonRows, TextRows};
use crate::{Global, UsageError};

/// Arguments of `peerlite remote-query`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    home: HomeArg,
    /// The database whose store to query on the device (its file name names the store).
    #[arg(value_name = "DB")]
    db: PathBuf,
    /// The device to ask.
    #[arg(long, value_name = "ID")]
    device: String,
    /// The distributed table.
    #[arg(long, value_name = "T")]
    table: String,
    /// The columns, in order (default: every synced column).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    columns: Vec<String>,
    /// Only rows whose COL equals VALUE (repeatable, ANDed; VALUE is an integer when written
    /// as one, `42` or `-7`, text otherwise: `007`, `+5` and `-0` are text).
    #[arg(long = "eq", value_name = "COL=VALUE", value_parser = parse_eq)]
    eqs: Vec<(String, peerlite::Value)>,
    /// Give up after this many seconds.
    /// (1 to 604800: a week; a larger value would overflow the clock's deadline).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    timeout: u64,
    #[command(flatten)]
    node: NodeArgs,
}

/// Runs `peerlite remote-query`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let store = args
        .db
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UsageError(format!("{}: not a database file name", args.db.display())))?
        .to_owned();
    let device = parse_device(&args.device)?;
    let mut predicates = RdbPredicates::new(args.table.clone());
    for (i, (column, value)) in args.eqs.iter().enumerate() {
        if i > 0 {
            predicates = predicates.and();
        }
        predicates = predicates.equal_to(column, value.clone());
    }
    let columns: Vec<&str> = args.columns.iter().map(String::as_str).collect();
    let home = args.home.open()?;
    refuse_own_id(&home, &[device])?;
    let (_, node) = node(&home, &args.node)?;
    let rt = runtime()?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let answer = rt.block_on(async {
        let rows = node
            .remote_query(device, &store, &predicates, &columns, timeout)
            .await;
        node.shutdown().await;
        rows
    });
    let rows = answer.map_err(net_error)?;
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut sink: Box<dyn ScriptSink> = if global.json {
        Box::new(JsonRows::new(out))
    } else {
        Box::new(TextRows::new(out))
    };
    sink.columns(&rows.columns)?;
    for row in &rows.rows {
        sink.row(row)?;
    }
    sink.end()?;
    Ok(())
}
