//! `peerlite serve --home H --listen ADDR [--db DB]... [--kv STORE_DIR STORE_ID]... [--no-mdns]
//! [--store-key NAME=KEY]...`: serves the stores to trusted devices in the foreground. Each
//! store opens with its own key when `--store-key` names it (`NAME=`: none), else with the
//! global `--key`, so encrypted and plain stores, or stores with different keys, serve together. Its first stdout line,
//! `listening on HOST:PORT` (the real port when ADDR ends in `:0`), comes once it accepts
//! connections. SIGINT or SIGTERM stop it cleanly (exit 0): running sessions get a few seconds
//! to finish and are then aborted, connections close, stores are closed (their WAL
//! checkpointed). Logs go to stderr (`-v`: connections, refusals, finished syncs).
//!
//! The trust store is read again while it runs, so `peerlite trust add|remove` in another
//! shell takes effect for the next handshake.
//!
//! While it serves it keeps the trusted devices up to date: it dials every trusted device
//! with an address (`peerlite trust add --addr`) whenever no connection with it is open
//! (backing off from 1 s to 60 s), finds the others on the LAN by mDNS unless `--no-mdns`
//! (where multicast does not work that is a warning, never fatal), syncs both ways every
//! store with changes a device it reached may lack, and pushes the commits of auto-sync
//! tables (`peerlite distribute --auto-sync`) — its own and other processes' — to the
//! connected devices shortly after they commit.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use peerlite_net::discovery::Discovery;
use peerlite_net::{AutoSync, Backoff, Home, Node, TrustSet, TrustStore};

use super::net::{HomeArg, NodeArgs, net_error, node, open_for_node, runtime, serve};
use super::target::Location;
use crate::{Global, UsageError, signals};

/// How often the trust store file is looked at for changes.
const TRUST_RELOAD: Duration = Duration::from_secs(1);

/// Arguments of `peerlite serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    home: HomeArg,
    /// Where to listen (`HOST:PORT`; port 0 picks a free one).
    #[arg(long, value_name = "ADDR")]
    listen: String,
    /// A database to serve (repeatable).
    #[arg(long = "db", value_name = "DB")]
    dbs: Vec<PathBuf>,
    /// A key-value store to serve (repeatable).
    #[arg(long, num_args = 2, value_names = ["STORE_DIR", "STORE_ID"], action = clap::ArgAction::Append)]
    kv: Vec<String>,
    /// Do not announce or look for devices on the LAN (mDNS); peers are dialled at their
    /// trust-store addresses either way.
    #[arg(long)]
    no_mdns: bool,
    /// The encryption key of one served store, by its name (the DB file name without its
    /// extension, or the STORE_ID): `NAME=KEY` (repeatable; `NAME=` serves that store
    /// without a key). Stores not named use the global `--key` / `PEERLITE_KEY`.
    #[arg(long = "store-key", value_name = "NAME=KEY")]
    store_keys: Vec<String>,
    #[command(flatten)]
    node: NodeArgs,
}

/// The name a served store goes by: its file name without the extension, or its STORE_ID.
fn store_name(location: &Location) -> String {
    match location {
        Location::Db(path) => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Location::Kv { id, .. } => id.clone(),
    }
}

/// The `--store-key NAME=KEY` options by store name: each names a store served here, once.
fn store_keys(
    given: &[String],
    locations: &[Location],
) -> Result<std::collections::HashMap<String, String>, UsageError> {
    let mut keys = std::collections::HashMap::new();
    for option in given {
        let Some((name, key)) = option.split_once('=') else {
            return Err(UsageError(format!(
                "--store-key {option:?}: give NAME=KEY (NAME= for a store without a key)"
            )));
        };
        if !locations.iter().any(|l| store_name(l) == name) {
            let served: Vec<String> = locations.iter().map(store_name).collect();
            return Err(UsageError(format!(
                "--store-key names {name:?}, which is not served here (served: {})",
                served.join(", ")
            )));
        }
        if keys.insert(name.to_owned(), key.to_owned()).is_some() {
            return Err(UsageError(format!(
                "--store-key names {name:?} more than once"
            )));
        }
    }
    Ok(keys)
}

/// Runs `peerlite serve`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let mut locations: Vec<Location> = args.dbs.iter().cloned().map(Location::Db).collect();
    for pair in args.kv.chunks(2) {
        if let [dir, id] = pair {
            locations.push(Location::Kv {
                dir: PathBuf::from(dir),
                id: id.clone(),
            });
        }
    }
    if locations.is_empty() {
        return Err(UsageError(
            "give the stores to serve: --db DB or --kv STORE_DIR STORE_ID".into(),
        )
        .into());
    }
    let keys = store_keys(&args.store_keys, &locations)?;
    let home = args.home.open()?;
    let (trust, node) = node(&home, &args.node)?;
    let mut opened = Vec::new();
    for location in &locations {
        let mut own = global.clone();
        if let Some(key) = keys.get(store_name(location).as_str()) {
            own.key = (!key.is_empty()).then(|| key.clone());
        }
        let store = open_for_node(&own, location, &home, false)?;
        let name = serve(&node, &store)?;
        tracing::info!(store = %name, "serving");
        opened.push(store);
    }
    let rt = runtime()?;
    rt.block_on(async {
        // Caught before `listening on` is printed: a script that stops serve as soon as it
        // reads that line must get a clean stop, not a process killed by the signal.
        let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
        signals::on_stop(move || {
            let _ = stop_tx.send(true);
        });
        let addr = node.listen(&args.listen).await.map_err(net_error)?;
        node.keep_in_sync(AutoSync::default()).map_err(net_error)?;
        node.keep_dialling(Backoff::default());
        // A loopback listener is announced on loopback (devices on one machine); any other
        // on the LAN.
        let discovery = if args.no_mdns {
            None
        } else {
            match Discovery::start(&node, addr, addr.ip().is_loopback()) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(
                        code = e.code(),
                        "{e}: peers are dialled at their trust-store addresses only (`peerlite trust add --addr`)"
                    );
                    None
                }
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        drop(out);
        let reload = tokio::spawn(reload_trust(home.clone(), trust, node.clone()));
        let _ = stop.wait_for(|s| *s).await;
        tracing::info!(device = %home.id(), "stopping");
        reload.abort();
        if let Some(d) = discovery {
            let _ = tokio::task::spawn_blocking(move || d.stop()).await;
        }
        node.shutdown().await;
        anyhow::Ok(())
    })?;
    drop(opened);
    Ok(())
}

/// Keeps the node's trust set in step with the home's trust store file: the next handshake
/// sees a device added or removed by `peerlite trust` in another process.
async fn reload_trust(home: Home, trust: TrustSet, node: Node) {
    let path = home.dir().join("trust.json");
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(TRUST_RELOAD).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        match TrustStore::open(&home) {
            Ok(store) => {
                trust.replace(store.devices().cloned());
                tracing::info!(devices = store.len(), "trust store reloaded");
                // A device removed (or given another level) loses its open connections too.
                node.enforce_trust();
            }
            Err(e) => {
                tracing::warn!(%e, "the trust store cannot be read; the devices trusted before stay trusted")
            }
        }
    }
}
