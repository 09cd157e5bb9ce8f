//! The demo's network chapters: three devices as real nodes on loopback, each with its own
//! identity (made as `peerlite device init` makes it), trust store and stores, talking TLS 1.3
//! with both certificates pinned to device ids — the node `peerlite serve` and `peerlite sync`
//! run. Every claim is checked before it is printed, every wait is bounded, and every node is
//! shut down at the end, whatever happened.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::ensure;
use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::schema::SyncSchema;
use peerlite::sync::{DeviceResult, SyncMode, SyncStatus};
use peerlite::{RdbPredicates, RdbStore, ScriptSink, SecurityLevel, StoreConfig, Value, bucket};
use peerlite_net::{DeviceId, DeviceLevel, Home, Node, TrustSet, TrustedDevice};
use tokio::runtime::Runtime;

use super::Story;
use crate::cmd::net::{self, NodeArgs};
use crate::cmd::sync::status_line;
use crate::output::{TextRows, value_text};

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
    /// `health.db`, labelled S3: the collaboration table `pulse`.
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
        let health = open("health.db", SecurityLevel::S3)?;
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
    let exists = scalar(
        store,
        &format!("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '{name}'"),
    )?;
    if exists == "0" {
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
    single_version(story, rt, paired)?;
    conflict(story, rt, paired)?;
    collaboration(story, rt, paired)?;
    remote_query(story, rt, paired)?;
    refusals(story, rt, paired, &stranger[0])?;
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

fn items(store: &RdbStore) -> anyhow::Result<String> {
    scalar(
        store,
        "SELECT group_concat(uuid || ' ' || title || ' x' || qty, ', ') FROM (SELECT * FROM item ORDER BY uuid)",
    )
}

fn single_version(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
    let (phone, laptop, tablet) = (&d[0], &d[1], &d[2]);
    story.step("Over TLS, single version: one table edited on all three devices converges");
    let schema = SyncSchema::parse(ITEM_SCHEMA)?;
    for dev in d {
        dev.shop.set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(schema.clone()),
        )?;
    }
    phone.shop.insert(
        "item",
        &bucket! { "uuid" => "tea-1", "title" => "green tea", "qty" => 1 },
    )?;
    laptop.shop.insert(
        "item",
        &bucket! { "uuid" => "pen-1", "title" => "pen", "qty" => 2 },
    )?;
    tablet.shop.insert(
        "item",
        &bucket! { "uuid" => "jam-1", "title" => "jam", "qty" => 1 },
    )?;
    phone
        .shop
        .execute("UPDATE item SET title = 'sencha' WHERE uuid = 'tea-1'", &[])?;
    story.say("phone adds tea-1 and renames it sencha, laptop adds pen-1, tablet adds jam-1 (rows keyed by uuid, the schema's conflict column)");
    for (a, b) in [(phone, laptop), (phone, tablet), (laptop, tablet)] {
        let r = sync(rt, a, b, "shop", SyncMode::PushPull)?;
        story.say(format!(
            "{} <-> {}: ok, {} row(s) sent, {} received",
            a.name, b.name, r.sent, r.received
        ));
        if b.name == "tablet" && a.name == "phone" {
            // The laptop's row went on with the phone's own: rows relay.
            let got = scalar(
                &tablet.shop,
                "SELECT count(*) FROM item WHERE uuid = 'pen-1'",
            )?;
            ensure!(
                got == "1",
                "demo: the phone did not relay the laptop's pen-1"
            );
        }
    }
    let first = items(&phone.shop)?;
    for dev in d {
        let rows = items(&dev.shop)?;
        story.say(format!("{:>6}: {rows}", dev.name));
        ensure!(
            rows == first,
            "demo: {} holds {rows}, the phone {first}",
            dev.name
        );
    }
    ensure!(
        first == "jam-1 jam x1, pen-1 pen x2, tea-1 sencha x1",
        "demo: the devices agree on the wrong rows: {first}"
    );
    story.say("converged: the same rows on every device; the tablet got the laptop's pen-1 from the phone, before it ever synced with the laptop (rows relay)");
    Ok(())
}

/// The stamp (hybrid logical clock) of `dev`'s own write of `column` in `key`'s row.
fn stamp(dev: &Device, key: &str, column: &str) -> anyhow::Result<u64> {
    let own = dev.id().to_string();
    dev.shop
        .changes(Some("item"), 0)?
        .iter()
        .filter(|c| c.key == Value::from(key))
        .flat_map(|c| c.columns.iter())
        .find(|(col, _, device)| col == column && *device == own)
        .map(|(_, hlc, _)| *hlc)
        .ok_or_else(|| anyhow::anyhow!("demo: no stamp of {}'s write of {column}", dev.name))
}

fn conflict(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
    use peerlite::changes::hlc::{COUNTER_BITS, physical_ms};
    let (phone, laptop, tablet) = (&d[0], &d[1], &d[2]);
    story.step("Over TLS, a concurrent conflict: two devices change one value while apart");
    tablet
        .shop
        .execute("UPDATE item SET qty = 7 WHERE uuid = 'tea-1'", &[])?;
    // A few milliseconds later on the laptop's own clock, so the order is plain to see.
    std::thread::sleep(Duration::from_millis(5));
    laptop
        .shop
        .execute("UPDATE item SET qty = 3 WHERE uuid = 'tea-1'", &[])?;
    let writes = [
        (tablet, 7, stamp(tablet, "tea-1", "qty")?),
        (laptop, 3, stamp(laptop, "tea-1", "qty")?),
    ];
    for (dev, qty, hlc) in &writes {
        story.say(format!(
            "apart, the {} sets tea-1 qty = {qty} (its clock stamp: {} ms, counter {})",
            dev.name,
            physical_ms(*hlc),
            hlc & ((1 << COUNTER_BITS) - 1)
        ));
    }
    // The rule the merge applies: the greater (stamp, device id) wins, column by column.
    let (winner, expected, _) = writes
        .iter()
        .max_by_key(|(dev, _, hlc)| (*hlc, dev.id().to_string()))
        .ok_or_else(|| anyhow::anyhow!("no write"))?;
    let qty = |dev: &Device| scalar(&dev.shop, "SELECT qty FROM item WHERE uuid = 'tea-1'");
    sync(rt, laptop, phone, "shop", SyncMode::PushPull)?;
    story.say(format!(
        "laptop <-> phone first: the phone hears the laptop's 3 and holds {}",
        qty(phone)?
    ));
    sync(rt, tablet, phone, "shop", SyncMode::PushPull)?;
    story.say(format!(
        "then tablet <-> phone: the phone hears the tablet's 7 second and holds {}; the tablet hears the 3 after its own 7 and holds {}",
        qty(phone)?,
        qty(tablet)?
    ));
    sync(rt, laptop, tablet, "shop", SyncMode::PushPull)?;
    story.say(format!(
        "then laptop <-> tablet: the laptop holds {}",
        qty(laptop)?
    ));
    let mut agreed = Vec::new();
    for dev in d {
        let q = qty(dev)?;
        ensure!(
            q == expected.to_string(),
            "demo: the {} holds qty {q}, not {expected}",
            dev.name
        );
        agreed.push(format!("{} {q}", dev.name));
    }
    story.say(format!(
        "every device: tea-1 qty = {expected} ({}) — the {}'s write, heard in a different order on each",
        agreed.join(", "),
        winner.name
    ));
    story.say("why: each column write carries a hybrid-logical-clock stamp (wall-clock ms + a counter, never going back); the merge keeps the greater (stamp, device id): last writer wins, per column, whatever the order of arrival");
    Ok(())
}

fn collaboration(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
    let phone = &d[0];
    story.step(
        "Over TLS, device collaboration: each device's rows arrive as its own read-only table",
    );
    let texts = [
        ("phone", "buy milk"),
        ("laptop", "draft the talk"),
        ("tablet", "water the plants"),
    ];
    for (dev, (_, text)) in d.iter().zip(texts) {
        dev.notes.set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )?;
        dev.notes.insert("note", &bucket! { "text" => text })?;
    }
    for dev in d {
        let results = bounded(
            rt,
            "a sync",
            dev.node.sync("notes", SyncMode::Push, None, PATIENCE),
        )?
        .map_err(net::net_error)?;
        let mut lines = Vec::new();
        for peer in d.iter().filter(|p| p.id() != dev.id()) {
            let r = results
                .iter()
                .find(|(id, _)| *id == peer.id())
                .map(|(_, r)| r)
                .ok_or_else(|| anyhow::anyhow!("demo: no result for the {}", peer.name))?;
            ensure!(
                r.status.is_ok(),
                "demo: {} push: {}",
                dev.name,
                status_line(&peer.id(), r)
            );
            lines.push(format!("{} ok", peer.name));
        }
        ensure!(
            results.len() == 2,
            "demo: {} pushed to {} devices",
            dev.name,
            results.len()
        );
        story.say(format!(
            "{} runs `peerlite sync --push notes.db`: {}",
            dev.name,
            lines.join(", ")
        ));
    }
    for other in &d[1..] {
        let name = phone
            .notes
            .obtain_distributed_table_name(&other.id().to_string(), "note")?;
        let held = rows_from(&phone.notes, other, "note", "text")?;
        let theirs: Vec<String> = other
            .notes
            .query_sql("SELECT text FROM note ORDER BY id", &[])?
            .rows()?
            .map(|r| value_text(&r[0]))
            .collect();
        ensure!(
            held == theirs,
            "demo: the phone holds {held:?} of the {}'s {theirs:?}",
            other.name
        );
        story.say(format!(
            "on the phone, `peerlite table-name notes.db --device {}… --table note` prints {name}: {held:?}",
            other.id().short()
        ));
    }
    let laptop_table = phone
        .notes
        .obtain_distributed_table_name(&d[1].id().to_string(), "note")?;
    let refused = super::must_fail(
        phone.notes.execute(
            &format!("UPDATE \"{laptop_table}\" SET text = 'mine now'"),
            &[],
        ),
        "a device table is read-only",
    )?;
    story.say(format!(
        "the phone may read the laptop's notes, not change them: error[{}] {refused}",
        refused.code()
    ));
    Ok(())
}

fn remote_query(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
    let (phone, tablet) = (&d[0], &d[2]);
    story.step("Remote query: a peer answers from its own copy, over TLS");
    tablet
        .notes
        .insert("note", &bucket! { "text" => "fix the bike" })?;
    story.say("the tablet writes a note and does not sync it");
    let rows = bounded(
        rt,
        "a remote query",
        phone.node.remote_query(
            tablet.id(),
            "notes",
            &RdbPredicates::new("note"),
            &["id", "text"],
            PATIENCE,
        ),
    )?
    .map_err(net::net_error)?;
    story.say(format!(
        "on the phone, `peerlite remote-query notes.db --device {}… --table note --columns id,text` prints:",
        tablet.id().short()
    ));
    let mut text = Vec::new();
    let mut sink = TextRows::new(&mut text);
    sink.columns(&rows.columns)?;
    for row in &rows.rows {
        sink.row(row)?;
    }
    sink.end()?;
    drop(sink);
    for line in String::from_utf8_lossy(&text).lines() {
        story.say(format!("  {line}"));
    }
    let answered: Vec<String> = rows
        .rows
        .iter()
        .filter_map(|r| r.get(1))
        .map(value_text)
        .collect();
    ensure!(
        answered == ["water the plants", "fix the bike"],
        "demo: the tablet answered {answered:?}"
    );
    let held = rows_from(&phone.notes, tablet, "note", "text")?;
    ensure!(
        held == ["water the plants"],
        "demo: the phone holds {held:?}"
    );
    story.say(format!(
        "the query ran on the tablet (validated there, capped at 4 MiB): the phone's own copy of the tablet's notes still has {} row",
        held.len()
    ));
    Ok(())
}

fn refusals(
    story: &mut Story,
    rt: &Runtime,
    d: &[Device],
    stranger: &Device,
) -> anyhow::Result<()> {
    let (phone, laptop, tablet) = (&d[0], &d[1], &d[2]);
    story.step("Refusals: a device nobody trusts, and data above a device's level");
    stranger.trust(phone)?;
    stranger.notes.set_distributed_tables(
        &["note"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )?;
    stranger
        .notes
        .insert("note", &bucket! { "text" => "let me in" })?;
    story.say(format!(
        "a fourth device, stranger {}…, knows the phone's id and address; nobody paired with it",
        stranger.id().short()
    ));
    let r = bounded(
        rt,
        "a sync",
        stranger
            .node
            .sync_with(phone.id(), "notes", SyncMode::Push, None, PATIENCE),
    )?;
    ensure!(
        matches!(r.status, SyncStatus::Untrusted(_)),
        "demo: the untrusted stranger's sync ended {}",
        status_line(&phone.id(), &r)
    );
    story.say("its `peerlite sync --push notes.db` prints:");
    story.say(format!("  {}", status_line(&phone.id(), &r)));
    let held = rows_from(&phone.notes, stranger, "note", "text")?;
    ensure!(
        held.is_empty(),
        "demo: the phone took the stranger's {held:?}"
    );
    story.say("the phone refused it in the TLS handshake and logged the attempt (the WARN lines on stderr are the nodes' logs): nothing of it reached the phone");
    let r = bounded(
        rt,
        "a sync",
        phone
            .node
            .sync_with(stranger.id(), "notes", SyncMode::Push, None, PATIENCE),
    )?;
    ensure!(
        matches!(r.status, SyncStatus::Untrusted(_)),
        "demo: a sync with a device the phone does not trust ended {}",
        status_line(&stranger.id(), &r)
    );
    story.say("the phone will not dial it either, before any connection:");
    story.say(format!("  {}", status_line(&stranger.id(), &r)));

    for dev in d {
        dev.health.set_distributed_tables(
            &["pulse"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )?;
    }
    phone.health.insert("pulse", &bucket! { "bpm" => 62 })?;
    story.say(format!(
        "the phone's health.db is labelled S3; the phone recorded the laptop as {} and the tablet as {} (SL2 takes S1-S2 only)",
        laptop.home.level(),
        tablet.home.level()
    ));
    for (dev, expected) in [
        (laptop, SyncStatus::Ok),
        (tablet, SyncStatus::SecurityRefused),
    ] {
        let r = bounded(
            rt,
            "a sync",
            dev.node
                .sync_with(phone.id(), "health", SyncMode::Pull, None, PATIENCE),
        )?;
        ensure!(
            r.status == expected,
            "demo: the {}'s pull of S3 data ended {}",
            dev.name,
            status_line(&phone.id(), &r)
        );
        story.say(format!(
            "the {}'s `peerlite sync --pull health.db` prints:",
            dev.name
        ));
        story.say(format!("  {}", status_line(&phone.id(), &r)));
    }
    ensure!(
        rows_from(&laptop.health, phone, "pulse", "bpm")? == ["62"]
            && rows_from(&tablet.health, phone, "pulse", "bpm")?.is_empty(),
        "demo: the S3 rows went to the wrong devices"
    );
    story.say("the laptop holds the phone's pulse; the tablet holds nothing of it");
    Ok(())
}
