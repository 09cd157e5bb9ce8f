//! The demo's network chapters: three devices as real nodes on loopback, each with its own
//! identity (made as `peerlite device init` makes it), trust store and stores, talking TLS 1.3
//! with both certificates pinned to device ids — the node `peerlite serve` and `peerlite sync`
//! run. Every claim is checked before it is printed, every wait is bounded, and every node is
//! shut down at the end, whatever happened.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::ensure;
use peerlite::sync::{DeviceResult, SyncMode};
use peerlite::{RdbStore, SecurityLevel, StoreConfig};
use peerlite_net::{DeviceId, DeviceLevel, Home, Node, TrustSet, TrustedDevice};
use tokio::runtime::Runtime;

use super::Story;

mod peers;
mod single_version;
use crate::cmd::net::{self, NodeArgs};
use crate::cmd::sync::status_line;
use crate::output::value_text;

/// A sync or a remote query not done in this time ends with its timed-out status.
const PATIENCE: Duration = Duration::from_secs(20);
/// The most any other wait may take (listening, connecting, shutting down): a guard against
/// hanging, never a measure.
const BOUND: Duration = Duration::from_secs(30);

/// The three paired devices and the level each declares; the tablet is a lesser device.
const DEVICES: [(&str, DeviceLevel); 3] = [
    ("phone", DeviceLevel::Sl4),
    ("laptop", DeviceLevel::Sl4),
    ("tablet", DeviceLevel::Sl2),
];

const ITEMS: &str = "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     uuid TEXT NOT NULL UNIQUE, title TEXT, qty INTEGER)";
const ITEM_SCHEMA: &str = r#"{"dbSchema": [{"version": 1, "bundleName": "com.example.demo", "dbName": "shop",
  "tables": [{"tableName": "item", "deviceSyncFields": ["uuid", "title", "qty"], "fields": [
    {"columnName": "uuid", "type": "Text", "primaryKey": true, "notNull": true},
    {"columnName": "title", "type": "Text"}, {"columnName": "qty", "type": "Integer"}]}]}]}"#;
const NOTES: &str = "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT NOT NULL)";
const PULSES: &str = "CREATE TABLE pulse(id INTEGER PRIMARY KEY, bpm INTEGER NOT NULL)";

/// One device: its home, its node and the stores the node serves.
struct Device {
    name: &'static str,
    home: Home,
    trust: TrustSet,
    node: Node,
    /// Where it listens (the stranger does not).
    addr: Option<String>,
    /// `shop.db`: the single-version table `item`.
    shop: RdbStore,
    /// `notes.db`: the device-collaboration table `note`.
    notes: RdbStore,
    /// `health.db`, labelled S3 (or the device's highest label below it): the collaboration
    /// table `pulse`.
    health: RdbStore,
}

impl Device {
    /// `peerlite device init` in `dir/name/home`, the stores beside it (opened as this
    /// device), and its node serving them.
    fn new(
        rt: &Runtime,
        dir: &Path,
        name: &'static str,
        level: DeviceLevel,
        listen: bool,
    ) -> anyhow::Result<Device> {
        let root = dir.join(name);
        let home = Home::init(root.join("home"), Some(name), level).map_err(net::fail)?;
        let (trust, node) = net::node(
            &home,
            &NodeArgs {
                batch_rows: peerlite::sync::DEFAULT_BATCH_ROWS,
                no_compression: false,
            },
        )?;
        let open = |file: &str, label: SecurityLevel| {
            RdbStore::open(
                StoreConfig::new(root.join(file))
                    .device_id(home.id().to_string())
                    .security_level(label),
            )
        };
        let shop = open("shop.db", SecurityLevel::S1)?;
        shop.execute(ITEMS, &[])?;
        let notes = open("notes.db", SecurityLevel::S1)?;
        notes.execute(NOTES, &[])?;
        // S3, or as high as the device may hold (the SL2 tablet's copy is S2).
        let label =
            SecurityLevel::from_u8(level.highest_label().min(3)).unwrap_or(SecurityLevel::S1);
        let health = open("health.db", label)?;
        health.execute(PULSES, &[])?;
        for store in [&shop, &notes, &health] {
            node.serve_store(store).map_err(net::net_error)?;
        }
        let addr = if listen {
            let bound = bounded(rt, "listening", node.listen("127.0.0.1:0"))?;
            Some(bound.map_err(net::net_error)?.to_string())
        } else {
            None
        };
        Ok(Device {
            name,
            home,
            trust,
            node,
            addr,
            shop,
            notes,
            health,
        })
    }

    fn id(&self) -> DeviceId {
        self.home.id()
    }

    /// Records `other` in the home's trust store (`peerlite trust add --name --level --addr`)
    /// and lets the running node see it (as `peerlite serve` reloads its trust store).
    fn trust(&self, other: &Device) -> anyhow::Result<()> {
        let mut device = TrustedDevice::new(other.id())
            .name(other.name)
            .level(other.home.level());
        device.addrs = other.addr.iter().cloned().collect();
        let mut store = self.home.trust_store().map_err(net::fail)?;
        store.add(device).map_err(net::fail)?;
        self.trust.replace(store.devices().cloned());
        Ok(())
    }
}

/// Runs `f` on the runtime, failing the demo if it takes longer than [`BOUND`].
fn bounded<F: Future>(rt: &Runtime, what: &str, f: F) -> anyhow::Result<F::Output> {
    // The timer is made inside the runtime, which owns the clock.
    rt.block_on(async { tokio::time::timeout(BOUND, f).await })
        .map_err(|_| anyhow::anyhow!("demo: {what} took longer than {BOUND:?}"))
}

/// `a` syncs `store` with `b` in one session; the demo fails unless it succeeded.
fn sync(
    rt: &Runtime,
    a: &Device,
    b: &Device,
    store: &str,
    mode: SyncMode,
) -> anyhow::Result<DeviceResult> {
    let r = bounded(
        rt,
        "a sync",
        a.node.sync_with(b.id(), store, mode, None, PATIENCE),
    )?;
    ensure!(
        r.status.is_ok(),
        "demo: {} could not sync {store} with {}: {}",
        a.name,
        b.name,
        status_line(&b.id(), &r)
    );
    Ok(r)
}

fn scalar(store: &RdbStore, sql: &str) -> anyhow::Result<String> {
    let mut rs = store.query_sql(sql, &[])?;
    ensure!(rs.go_to_first_row()?, "no row for {sql}");
    Ok(value_text(&rs.get_value(0)?))
}

/// The texts of `owner`'s rows of `table` held by `store` (none before any arrived).
fn rows_from(
    store: &RdbStore,
    owner: &Device,
    table: &str,
    column: &str,
) -> anyhow::Result<Vec<String>> {
    let name = store.obtain_distributed_table_name(&owner.id().to_string(), table)?;
    let mut exists = store.query_sql(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        &[peerlite::Value::from(name.as_str())],
    )?;
    ensure!(exists.go_to_first_row()?, "no count of tables");
    if exists.get_long(0)? == 0 {
        return Ok(Vec::new());
    }
    let rs = store.query_sql(&format!("SELECT {column} FROM \"{name}\" ORDER BY id"), &[])?;
    Ok(rs.rows()?.map(|r| value_text(&r[0])).collect())
}

/// The network chapters.
pub(super) fn story(story: &mut Story, dir: &Path) -> anyhow::Result<()> {
    let rt = net::runtime()?;
    let mut devices = Vec::new();
    let made = (|| {
        for (name, level) in DEVICES {
            devices.push(Device::new(&rt, dir, name, level, true)?);
        }
        // A fourth identity that nobody pairs with.
        devices.push(Device::new(&rt, dir, "stranger", DeviceLevel::Sl4, false)?);
        anyhow::Ok(())
    })();
    let told = made.and_then(|()| chapters(story, &rt, &devices));
    // Every node stops, whatever happened: sessions end, connections close, stores close.
    let mut stopped = Ok(());
    for d in &devices {
        if let Err(e) = bounded(&rt, "shutting a node down", d.node.shutdown()) {
            stopped = Err(e);
        }
    }
    told?;
    stopped?;
    let open = devices
        .iter()
        .filter(|d| {
            !d.node.connected().is_empty()
                || [&d.shop, &d.notes, &d.health]
                    .iter()
                    .any(|s| !s.is_closed())
        })
        .count();
    ensure!(
        open == 0,
        "demo: {open} node(s) still hold a connection or a store"
    );
    story.say(format!(
        "the {} nodes shut down: no connection left open, every store closed",
        devices.len()
    ));
    Ok(())
}

fn chapters(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
    let (paired, stranger) = d.split_at(3);
    pairing(story, rt, paired)?;
    single_version::converge(story, rt, paired)?;
    single_version::conflict(story, rt, paired)?;
    peers::collaboration(story, rt, paired)?;
    peers::remote_query(story, rt, paired)?;
    peers::refusals(story, rt, paired, &stranger[0])?;
    Ok(())
}

fn pairing(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
    story.step("On the network: three devices, real nodes on loopback, paired, over TLS");
    story.say("each device: `peerlite device init` (an Ed25519 key pair; the id is its hash, with check characters), its own stores, a node listening on 127.0.0.1");
    for dev in d {
        story.say(format!(
            "{:>6}: id {}… {} listening on {}",
            dev.name,
            dev.id().short(),
            dev.home.level(),
            dev.addr.as_deref().unwrap_or("-")
        ));
    }
    story.say("pairing, as `peerlite trust add --home H ID --name N --level SLn --addr HOST:PORT` does on each device:");
    for a in d {
        let mut told = Vec::new();
        for b in d.iter().filter(|b| b.id() != a.id()) {
            a.trust(b)?;
            told.push(format!(
                "{} {}… {} at {}",
                b.name,
                b.id().short(),
                b.home.level(),
                b.addr.as_deref().unwrap_or("-")
            ));
        }
        let saved = a.home.trust_store().map_err(net::fail)?;
        ensure!(
            saved.len() == d.len() - 1,
            "demo: {} trusts {} devices",
            a.name,
            saved.len()
        );
        story.say(format!("{} trusts {}", a.name, told.join(", ")));
    }
    // Each pair connects once; the handshake proves both ids, and the connection then
    // carries every session between the two, whichever side starts it.
    for (i, a) in d.iter().enumerate() {
        for b in &d[i + 1..] {
            bounded(rt, "connecting", a.node.connect(b.id()))?.map_err(net::net_error)?;
        }
    }
    for a in d {
        let others: Vec<DeviceId> = d
            .iter()
            .map(Device::id)
            .filter(|id| *id != a.id())
            .collect();
        let mut waited = Duration::ZERO;
        while !others.iter().all(|o| a.node.connected().contains(o)) {
            ensure!(
                waited < BOUND,
                "demo: {} never connected to both others",
                a.name
            );
            std::thread::sleep(Duration::from_millis(10));
            waited += Duration::from_millis(10);
        }
    }
    story.say("TLS 1.3, mutual: every device is connected to both others, each side having proved its id with its key (no CA, no password)");
    Ok(())
}
