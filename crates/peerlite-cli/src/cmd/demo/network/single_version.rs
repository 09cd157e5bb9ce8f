//! Single-version sync over the network: one table edited on three devices converges, and a
//! value two devices change while apart ends the same everywhere.

use std::time::Duration;

use anyhow::ensure;
use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::schema::SyncSchema;
use peerlite::sync::SyncMode;
use peerlite::{RdbStore, Value, bucket};
use tokio::runtime::Runtime;

use super::{Device, ITEM_SCHEMA, scalar, sync};
use crate::cmd::demo::Story;

fn items(store: &RdbStore) -> anyhow::Result<String> {
    scalar(
        store,
        "SELECT group_concat(uuid || ' ' || title || ' x' || qty, ', ') FROM (SELECT * FROM item ORDER BY uuid)",
    )
}

pub(super) fn converge(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
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

pub(super) fn conflict(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
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
