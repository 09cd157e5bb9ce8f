//! The demo's sync chapters: three devices of one user, each with real database files.
//! Sessions run in-process here (the same protocol messages, encoded and decoded as on a
//! network); the simulation then shows convergence over a network that loses, duplicates and
//! reorders messages and splits into partitions.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::ensure;
use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::schema::SyncSchema;
use peerlite::sync::{Resolution, SyncMode, sync_in_memory};
use peerlite::{KvManager, KvValue, Options, RdbStore, StoreConfig, SubscribeType, bucket};
use peerlite_testkit::sim::{Faults, SimConfig};

use super::Story;

const DEVICES: [&str; 3] = ["phone", "laptop", "tablet"];

const NOTES: &str = "CREATE TABLE IF NOT EXISTS note(id INTEGER PRIMARY KEY, text TEXT NOT NULL)";
const ITEMS: &str = "CREATE TABLE IF NOT EXISTS item(id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     uuid TEXT NOT NULL UNIQUE, title TEXT, qty INTEGER)";
const COUPONS: &str = "CREATE TABLE IF NOT EXISTS coupon(id INTEGER PRIMARY KEY AUTOINCREMENT, \
                       uuid TEXT NOT NULL UNIQUE, code TEXT NOT NULL UNIQUE)";
const SCHEMA: &str = r#"{"dbSchema": [{"version": 1, "bundleName": "com.example.demo", "dbName": "shop",
  "tables": [{"tableName": "item", "deviceSyncFields": ["uuid", "title", "qty"], "fields": [
    {"columnName": "uuid", "type": "Text", "primaryKey": true, "notNull": true},
    {"columnName": "title", "type": "Text"}, {"columnName": "qty", "type": "Integer"}]},
  {"tableName": "coupon", "deviceSyncFields": ["uuid", "code"], "fields": [
    {"columnName": "uuid", "type": "Text", "primaryKey": true, "notNull": true},
    {"columnName": "code", "type": "Text", "notNull": true}]}]}]}"#;
const WRONG_SCHEMA: &str = r#"{"dbSchema": [{"version": 1, "bundleName": "com.example.demo", "dbName": "shop",
  "tables": [{"tableName": "item", "deviceSyncFields": ["id", "title"], "fields": [
    {"columnName": "id", "type": "Long", "primaryKey": true, "autoIncrement": true},
    {"columnName": "title", "type": "Text"}]}]}]}"#;

struct Device {
    name: &'static str,
    notes: RdbStore,
    shop: RdbStore,
}

fn open(dir: &Path, name: &'static str) -> anyhow::Result<Device> {
    let home = dir.join(name);
    std::fs::create_dir_all(&home)?;
    let notes = RdbStore::open(StoreConfig::new(home.join("notes.db")).device_id(name))?;
    notes.execute(NOTES, &[])?;
    notes.set_distributed_tables(
        &["note"],
        DistributedType::Device,
        &DistributedConfig::default(),
    )?;
    let shop = RdbStore::open(StoreConfig::new(home.join("shop.db")).device_id(name))?;
    shop.execute(ITEMS, &[])?;
    shop.execute(COUPONS, &[])?;
    Ok(Device { name, notes, shop })
}

fn scalar(store: &RdbStore, sql: &str) -> anyhow::Result<String> {
    let mut rs = store.query_sql(sql, &[])?;
    ensure!(rs.go_to_first_row()?, "no row for {sql}");
    Ok(crate::output::value_text(&rs.get_value(0)?))
}

/// All the sync chapters.
pub(super) fn story(story: &mut Story, dir: &Path) -> anyhow::Result<()> {
    let devices = DEVICES
        .iter()
        .map(|n| open(dir, n))
        .collect::<anyhow::Result<Vec<_>>>()?;
    collaboration(story, &devices)?;
    single_version(story, &devices)?;
    unique_clash(story, &devices)?;
    key_value(story, dir)?;
    simulation(story)?;
    Ok(())
}

fn collaboration(story: &mut Story, d: &[Device]) -> anyhow::Result<()> {
    let (phone, laptop, tablet) = (&d[0], &d[1], &d[2]);
    story.step("Sync, device collaboration: every device's rows stay its own");
    phone
        .notes
        .insert("note", &bucket! { "text" => "buy milk" })?;
    phone
        .notes
        .insert("note", &bucket! { "text" => "call mum" })?;
    laptop
        .notes
        .insert("note", &bucket! { "text" => "draft the talk" })?;
    let changes = phone.notes.changes(Some("note"), 0)?;
    story.say(format!(
        "the phone's triggers captured {} changes (origin {}, sequence numbers {:?})",
        changes.len(),
        changes[0].origin,
        changes.iter().map(|c| c.seq).collect::<Vec<_>>()
    ));
    let (sent, got) = sync_in_memory(&phone.notes, &laptop.notes, SyncMode::PushPull, None)?;
    story.say(format!(
        "phone <-> laptop: {} row(s) sent, {} received (status {} / {})",
        sent.sent, got.received, sent.status, got.status
    ));
    let table = laptop
        .notes
        .obtain_distributed_table_name(phone.name, "note")?;
    let count = scalar(&laptop.notes, &format!("SELECT count(*) FROM \"{table}\""))?;
    story.say(format!(
        "on the laptop the phone's notes live in {table}: {count} row(s)"
    ));
    let refused = super::must_fail(
        laptop
            .notes
            .execute(&format!("DELETE FROM \"{table}\""), &[]),
        "device tables are read-only",
    )?;
    story.say(format!(
        "the laptop may not edit them: error[{}] {refused}",
        refused.code()
    ));
    sync_in_memory(&laptop.notes, &tablet.notes, SyncMode::Push, None)?;
    let relayed = tablet
        .notes
        .obtain_distributed_table_name(phone.name, "note")?;
    let count = scalar(
        &tablet.notes,
        &format!("SELECT count(*) FROM \"{relayed}\""),
    )?;
    ensure!(
        count == "2",
        "the tablet should have the phone's 2 notes, has {count}"
    );
    story.say(format!(
        "laptop -> tablet relays the phone's notes: the tablet has {count}, though it never met the phone"
    ));
    let (again, _) = sync_in_memory(&phone.notes, &laptop.notes, SyncMode::PushPull, None)?;
    story.say(format!(
        "syncing again sends {} row(s): watermarks remember what each peer has",
        again.sent
    ));
    Ok(())
}

fn single_version(story: &mut Story, d: &[Device]) -> anyhow::Result<()> {
    let (phone, laptop) = (&d[0], &d[1]);
    story.step("Sync, single version: one table merged by a conflict column");
    let wrong = SyncSchema::parse(WRONG_SCHEMA)?;
    for p in phone.shop.check_sync_schema(&wrong)? {
        story.say(format!("schema-check: {p}"));
    }
    let schema = SyncSchema::parse(SCHEMA)?;
    ensure!(
        phone.shop.check_sync_schema(&schema)?.is_empty(),
        "the schema is valid"
    );
    story.say("the corrected sync_schema.json (uuid resolves conflicts) passes");
    for dev in [phone, laptop] {
        dev.shop.set_distributed_tables(
            &["item"],
            DistributedType::Device,
            &DistributedConfig::single_version(schema.clone()),
        )?;
    }
    laptop.shop.insert(
        "item",
        &bucket! { "uuid" => "pen-1", "title" => "pen", "qty" => 2 },
    )?;
    phone.shop.insert(
        "item",
        &bucket! { "uuid" => "tea-1", "title" => "green tea", "qty" => 1 },
    )?;
    phone.shop.insert(
        "item",
        &bucket! { "uuid" => "jam-1", "title" => "jam", "qty" => 1 },
    )?;
    sync_in_memory(&phone.shop, &laptop.shop, SyncMode::Push, None)?;
    // Offline, both edit the same row: the phone its title, the laptop its quantity; the
    // phone deletes the jam while the laptop raises its quantity.
    phone
        .shop
        .execute("UPDATE item SET title = 'sencha' WHERE uuid = 'tea-1'", &[])?;
    laptop
        .shop
        .execute("UPDATE item SET qty = 3 WHERE uuid = 'tea-1'", &[])?;
    phone
        .shop
        .execute("DELETE FROM item WHERE uuid = 'jam-1'", &[])?;
    laptop
        .shop
        .execute("UPDATE item SET qty = 5 WHERE uuid = 'jam-1'", &[])?;
    sync_in_memory(&phone.shop, &laptop.shop, SyncMode::PushPull, None)?;
    for dev in [phone, laptop] {
        let row = scalar(
            &dev.shop,
            "SELECT title || ' x' || qty || ', ' || (SELECT count(*) FROM item WHERE uuid = 'jam-1') || ' jam' FROM item WHERE uuid = 'tea-1'",
        )?;
        story.say(format!("{:>6}: {row}", dev.name));
    }
    ensure!(
        scalar(
            &laptop.shop,
            "SELECT title || qty FROM item WHERE uuid = 'tea-1'"
        )? == "sencha3",
        "both column edits must survive"
    );
    story.say("both edits of tea-1 survive (last writer wins per column); the delete beats the concurrent update");
    let id_of = |dev: &Device| scalar(&dev.shop, "SELECT id FROM item WHERE uuid = 'tea-1'");
    story.say(format!(
        "local AUTOINCREMENT ids never travel: tea-1 is id {} on the phone, id {} on the laptop",
        id_of(phone)?,
        id_of(laptop)?
    ));
    Ok(())
}

/// Two rows with different identities claim one UNIQUE value on two devices: recorded on
/// both, never dropped, and settled alike by each device on its own.
fn unique_clash(story: &mut Story, d: &[Device]) -> anyhow::Result<()> {
    let (phone, laptop) = (&d[0], &d[1]);
    story.step("Sync conflicts: two devices hand out the same coupon code");
    let schema = SyncSchema::parse(SCHEMA)?;
    for dev in [phone, laptop] {
        dev.shop.set_distributed_tables(
            &["coupon"],
            DistributedType::Device,
            &DistributedConfig::single_version(schema.clone()),
        )?;
    }
    phone.shop.insert(
        "coupon",
        &bucket! { "uuid" => "c-phone", "code" => "SPRING" },
    )?;
    // Later, on its own clock (a millisecond apart at least, so the order is plain).
    std::thread::sleep(std::time::Duration::from_millis(5));
    laptop.shop.insert(
        "coupon",
        &bucket! { "uuid" => "c-laptop", "code" => "SPRING" },
    )?;
    let (on_phone, on_laptop) =
        sync_in_memory(&phone.shop, &laptop.shop, SyncMode::PushPull, None)?;
    story.say(format!(
        "phone <-> laptop: {} conflict(s) recorded on the phone, {} on the laptop; each keeps its own coupon, neither row is dropped",
        on_phone.conflicts, on_laptop.conflicts
    ));
    for dev in [phone, laptop] {
        for conflict in dev.shop.conflicts()? {
            dev.shop
                .resolve_conflict(conflict.id, Resolution::KeepEarlier)?;
        }
    }
    sync_in_memory(&phone.shop, &laptop.shop, SyncMode::PushPull, None)?;
    let kept = |dev: &Device| scalar(&dev.shop, "SELECT group_concat(uuid) FROM coupon");
    let (p, l) = (kept(phone)?, kept(laptop)?);
    ensure!(
        p == "c-phone" && l == p,
        "both keep the earlier coupon: {p} / {l}"
    );
    story.say(format!(
        "each settled its own conflict alone (Resolution::KeepEarlier): phone keeps {p}, laptop keeps {l} -- the coupon created first; c-laptop is deleted everywhere"
    ));
    Ok(())
}

fn key_value(story: &mut Story, dir: &Path) -> anyhow::Result<()> {
    story.step("Sync, key-value store: settings that follow the user");
    let open = |device: &str| -> anyhow::Result<_> {
        let manager = KvManager::at(dir.join(device).join("kv"))?.device_id(device);
        Ok(manager.get_kv_store("settings", Options::default())?)
    };
    let (phone, laptop) = (open("phone")?, open("laptop")?);
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    laptop.on_data_change(SubscribeType::Remote, move |n| {
        if let Ok(mut heard) = sink.lock() {
            heard.push(format!(
                "{} sent {} new, {} changed, {} deleted",
                n.device_id,
                n.insert_entries.len(),
                n.update_entries.len(),
                n.delete_entries.len()
            ));
        }
    })?;
    phone.put("ui.theme", "dark")?;
    phone.put("ui.font_size", 14)?;
    laptop.put("ui.theme", "light")?; // the later write of the same key
    sync_in_memory(
        phone.sync_store()?,
        laptop.sync_store()?,
        SyncMode::PushPull,
        None,
    )?;
    let theme = laptop.get("ui.theme")?;
    story.say(format!(
        "after phone <-> laptop: ui.theme = {theme} on both (the later write), ui.font_size = {}",
        laptop.get("ui.font_size")?
    ));
    ensure!(phone.get("ui.theme")? == theme, "the stores must agree");
    ensure!(
        laptop.get("ui.font_size")? == KvValue::Integer(14),
        "types survive sync"
    );
    if let Ok(heard) = heard.lock() {
        for line in heard.iter() {
            story.say(format!("the laptop's remote observer heard: {line}"));
        }
    }
    Ok(())
}

fn simulation(story: &mut Story) -> anyhow::Result<()> {
    story.step("Convergence over a bad network (the deterministic simulation)");
    let config = SimConfig {
        devices: 4,
        ops: 200,
        seed: 2026,
        faults: Faults {
            drop: 0.2,
            dup: 0.2,
            reorder: true,
        },
        partitions: true,
        ..SimConfig::default()
    };
    let report = peerlite_testkit::sim::run(&config)?;
    story.say(format!(
        "4 devices, 200 random writes, 20% of messages lost, 20% duplicated, reordered, partitioned: {} of {} messages delivered",
        report.network.delivered, report.network.sent
    ));
    for d in &report.devices {
        story.say(format!(
            "{}: items {} ({} rows), notes {} ({} rows)",
            d.device, d.items_hash, d.items, d.notes_hash, d.notes
        ));
    }
    ensure!(report.ok(), "the simulation must converge: {report:?}");
    story.say(format!(
        "converged after {} healing round(s); {} writes checked against the merge rules, none lost (replay: peerlite sim --devices 4 --ops 200 --seed 2026 --drop 0.2 --dup 0.2 --reorder --partitions)",
        report.rounds, report.writes
    ));
    Ok(())
}
