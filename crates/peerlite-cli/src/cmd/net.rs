//! What the network commands share: the `--home` flag, how a peerlite-net error is reported
//! (`error[CODE]: …`, `hint: …`, exit 2), and for `serve`, `sync` and `remote-query` the
//! node, its runtime and the stores it serves (opened as the home's device).

use std::path::PathBuf;

use peerlite::RdbStore;
use peerlite_net::{ChannelConfig, DeviceId, Endpoint, Home, Node, NodeConfig, TrustSet};

use super::store_config;
use super::target::{Location, Opened};
use crate::{Exit, Global};

/// `--home DIR`: the device home (identity and trust store).
#[derive(clap::Args, Debug)]
pub struct HomeArg {
    /// The device's home directory (its identity and trust store).
    #[arg(long, value_name = "DIR", env = "PEERLITE_HOME")]
    pub home: PathBuf,
}

impl HomeArg {
    /// Opens the identity in the home.
    pub fn open(&self) -> anyhow::Result<Home> {
        Home::open(&self.home).map_err(fail)
    }
}

/// Prints `error[CODE]: message` and `hint: …` for a network error and exits 2.
pub fn fail(err: peerlite_net::Error) -> anyhow::Error {
    eprintln!("error[{}]: {err}", err.code());
    eprintln!("hint: {}", err.hint());
    Exit(2).into()
}

/// A peerlite-net error as a command reports it: a library error (a store, a peer's refusal)
/// through the usual report with this command line's hints, the others with their own code
/// and hint.
pub fn net_error(err: peerlite_net::Error) -> anyhow::Error {
    match err {
        peerlite_net::Error::Store(e) => e.into(),
        other => fail(other),
    }
}

/// The runtime the network commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `--batch-rows N` and `--no-compression`, shared by `serve` and `sync`.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Rows per sync batch (a batch also stops after 4 MiB of values).
    #[arg(long, value_name = "ROWS", default_value_t = peerlite::sync::DEFAULT_BATCH_ROWS, value_parser = batch_rows)]
    pub batch_rows: usize,
    /// Send batches uncompressed (by default they travel zstd-compressed when the peer
    /// agrees; either side turning it off turns it off between the two).
    #[arg(long)]
    pub no_compression: bool,
}

/// This device's node: the identity in the home, the devices its trust store lists (the
/// set is returned too, to be reloaded), batches zstd-packed by the sessions (so the channel
/// does not compress them again).
pub fn node(home: &Home, args: &NodeArgs) -> anyhow::Result<(TrustSet, Node)> {
    let trust = TrustSet::from_store(&home.trust_store().map_err(fail)?);
    let endpoint = Endpoint::new(
        home,
        trust.clone(),
        ChannelConfig::default().compression(false),
    )
    .map_err(fail)?;
    let config = NodeConfig::default()
        .batch_rows(args.batch_rows)
        .compression(!args.no_compression);
    Ok((trust, Node::new(endpoint, config)))
}

/// Opens the store at `location` as this device (the home's id): a store synced under
/// another id is refused (17040009) unless `reidentify`.
pub fn open_for_node(
    global: &Global,
    location: &Location,
    home: &Home,
    reidentify: bool,
) -> anyhow::Result<Opened> {
    let id = home.id().to_string();
    match location {
        Location::Db(path) => {
            if !path.exists() && !peerlite::repair::repair_pending(path) {
                return Err(peerlite::Error::InvalidPath {
                    path: path.clone(),
                    reason: "no database there".into(),
                }
                .into());
            }
            let config = store_config(global, path)
                .busy_timeout(SYNC_BUSY_WAIT)
                .device_id(id)
                .reidentify(reidentify);
            Ok(Opened::Rdb(RdbStore::open(config)?))
        }
        Location::Kv { dir, id: store_id } => {
            refuse_relational(global, &dir.join(format!("{store_id}.db")))?;
            let manager = super::existing_kv_manager(dir, store_id)?
                .device_id(id)
                .reidentify(reidentify);
            let options = super::level::kv_options(global, dir, store_id, false);
            Ok(Opened::Kv(manager.get_kv_store(store_id, options)?))
        }
    }
}

/// How long a store that syncs waits for another writer's lock (an app's long write
/// transaction) before the batch fails with 14800024: longer than an interactive command's
/// 5 s, since nobody waits at a prompt, and within the ~30 s a peer waits for an answer
/// before it gives the session up.
const SYNC_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves an opened store on `node`; returns its logical name.
pub fn serve(node: &Node, store: &Opened) -> anyhow::Result<String> {
    match store {
        Opened::Rdb(s) => node.serve_store(s),
        Opened::Kv(s) => node.serve_kv_store(s),
    }
    .map_err(net_error)
}

/// Parses `--eq COL=VALUE`: the value is an integer when it is written as SQLite writes one
/// (`42`, `-7`), text otherwise — `007`, `+5` and `-0` stay text, so a TEXT column's zip code
/// or phone number can be selected (an INTEGER column still matches `7` to `007`: SQLite
/// converts text compared with it).
pub fn parse_eq(text: &str) -> Result<(String, peerlite::Value), String> {
    let Some((column, value)) = text.split_once('=') else {
        return Err(format!("{text:?}: expected COL=VALUE"));
    };
    if column.is_empty() {
        return Err(format!("{text:?}: the column name is empty"));
    }
    let value = match value.parse::<i64>() {
        Ok(n) if n.to_string() == value => peerlite::Value::Integer(n),
        _ => peerlite::Value::Text(value.to_owned()),
    };
    Ok((column.to_owned(), value))
}

/// Parses a device id given on the command line (a mistyped one fails with 17060010).
pub fn parse_device(text: &str) -> anyhow::Result<DeviceId> {
    DeviceId::parse(text).map_err(|e| fail(e.into()))
}

/// Refuses this device's own id among the devices to reach (17060016): a sync with itself
/// would run a session and say `ok`.
pub fn refuse_own_id(home: &Home, devices: &[DeviceId]) -> anyhow::Result<()> {
    match devices.iter().find(|d| **d == home.id()) {
        Some(own) => Err(fail(peerlite_net::Error::InvalidArgument {
            what: "device id",
            reason: format!("{own} is this device's own id"),
        })),
        None => Ok(()),
    }
}

/// `--batch-rows`: 1 to 100,000 (0 would stall a sync on empty batches).
fn batch_rows(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a number of rows from 1 to 100000")),
    }
}

/// `--kv DIR ID` naming a relational database: opening it as a key-value store would add the
/// entry table to it before anything failed. Refused, changing nothing.
fn refuse_relational(global: &Global, file: &std::path::Path) -> anyhow::Result<()> {
    if !file.is_file() {
        return Ok(());
    }
    let probe = RdbStore::open(store_config(global, file).read_only(true))?;
    let tables = probe
        .query_sql(
            "SELECT group_concat(name, ' ') FROM sqlite_schema WHERE type = 'table' AND name = 'peerlite_kv'",
            &[],
        )?
        .rows()?
        .next()
        .and_then(|r| r.first().cloned());
    let holds_entries = matches!(tables, Some(peerlite::Value::Text(_)));
    let user_tables = probe
        .query_sql(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'peerlite\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            &[],
        )?
        .rows()?
        .next()
        .and_then(|r| r.first().cloned());
    probe.close()?;
    if !holds_entries && !matches!(user_tables, Some(peerlite::Value::Integer(0)) | None) {
        return Err(peerlite::Error::InvalidArgument {
            message: format!(
                "{} is a relational database, not a key-value store: sync it as `peerlite sync --home H {}`",
                file.display(),
                file.display()
            ),
            kind: peerlite::StoreKind::KeyValue,
        }
        .into());
    }
    Ok(())
}
