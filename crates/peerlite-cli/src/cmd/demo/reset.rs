//! The demo's client-reset chapter: a device that was away longer than its peer keeps
//! deletes is refused a delta (17040011), reset against the peer, and keeps its offline edits.

use std::path::Path;

use anyhow::ensure;
use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::reset::ResetMode;
use peerlite::schema::SyncSchema;
use peerlite::sync::{SyncMode, SyncStatus, sync_in_memory};
use peerlite::{RdbStore, StoreConfig, bucket};

use super::Story;

const ITEMS: &str = "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     uuid TEXT NOT NULL UNIQUE, title TEXT, qty INTEGER)";
const SCHEMA: &str = r#"{"dbSchema": [{"version": 1, "bundleName": "com.example.demo", "dbName": "list",
  "tables": [{"tableName": "item", "deviceSyncFields": ["uuid", "title", "qty"], "fields": [
    {"columnName": "uuid", "type": "Text", "primaryKey": true, "notNull": true},
    {"columnName": "title", "type": "Text"}, {"columnName": "qty", "type": "Integer"}]}]}]}"#;

fn open(dir: &Path, name: &str) -> anyhow::Result<RdbStore> {
    let home = dir.join(name);
    std::fs::create_dir_all(&home)?;
    let store = RdbStore::open(StoreConfig::new(home.join("list.db")).device_id(name))?;
    store.execute(ITEMS, &[])?;
    store.set_distributed_tables(
        &["item"],
        DistributedType::Device,
        &DistributedConfig::single_version(SyncSchema::parse(SCHEMA)?),
    )?;
    Ok(store)
}

fn listing(store: &RdbStore) -> anyhow::Result<String> {
    let rs = store.query_sql(
        "SELECT group_concat(title || ' x' || qty, ', ') FROM (SELECT title, qty FROM item ORDER BY uuid)",
        &[],
    )?;
    Ok(rs
        .rows()?
        .next()
        .and_then(|r| r.first().cloned())
        .and_then(|v| match v {
            peerlite::Value::Text(t) => Some(t),
            _ => None,
        })
        .unwrap_or_default())
}

pub(super) fn story(story: &mut Story, dir: &Path) -> anyhow::Result<()> {
    story.step("Client reset: a device away past the retention keeps its offline edits");
    let phone = open(dir, "phone")?;
    let laptop = open(dir, "laptop")?;
    for (uuid, title) in [("a-pen", "pen"), ("b-tea", "tea"), ("c-jam", "jam")] {
        laptop.insert(
            "item",
            &bucket! { "uuid" => uuid, "title" => title, "qty" => 1 },
        )?;
    }
    sync_in_memory(&phone, &laptop, SyncMode::Pull, None)?;
    story.say(format!("both hold: {}", listing(&phone)?));
    phone.insert(
        "item",
        &bucket! { "uuid" => "d-cake", "title" => "cake", "qty" => 2 },
    )?;
    phone.execute("UPDATE item SET title = 'sencha' WHERE uuid = 'b-tea'", &[])?;
    story.say("the phone goes offline, adds cake and renames the tea to sencha");
    laptop.execute("DELETE FROM item WHERE uuid = 'c-jam'", &[])?;
    let purged = laptop.purge_tombstones(Some(std::time::Duration::ZERO))?;
    story.say(format!(
        "the laptop deletes the jam; {} tombstone(s) later go past its retention and are purged (`peerlite purge --older-than 0s` here)",
        purged.purged
    ));
    let (on_phone, _) = sync_in_memory(&phone, &laptop, SyncMode::Pull, None)?;
    ensure!(
        on_phone.status == SyncStatus::ResetRequired,
        "the phone must be refused a delta: {on_phone:?}"
    );
    story.say(format!(
        "the phone comes back and pulls: error[{}] {} — a delta would never tell it the jam is gone",
        on_phone.status.code(),
        on_phone.status
    ));
    let reseed = phone.begin_reset("laptop")?;
    let unsynced = reseed.unsynced_changes()?.len();
    sync_in_memory(reseed.seed(), &laptop, SyncMode::Pull, None)?;
    let report = reseed.finish(ResetMode::RecoverUnsynced)?;
    story.say(format!(
        "`peerlite reset --device laptop --mode recover`: backup {} taken first; the laptop's full state pulled; {unsynced} unsynced change(s) replayed with their own timestamps ({} recovered)",
        report
            .backup
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        report.recovered
    ));
    sync_in_memory(&phone, &laptop, SyncMode::Push, None)?;
    let (p, l) = (listing(&phone)?, listing(&laptop)?);
    story.say(format!(" phone: {p}"));
    story.say(format!("laptop: {l}"));
    ensure!(
        p == l && p.contains("cake") && p.contains("sencha") && !p.contains("jam"),
        "the reset must keep the offline edits and the delete: {p} / {l}"
    );
    story.say(
        "the offline edits survive, the delete the phone missed stands, and both devices agree",
    );
    Ok(())
}
