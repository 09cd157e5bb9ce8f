//! Device collaboration, remote query and refusals over the network.

use anyhow::ensure;
use peerlite::RdbPredicates;
use peerlite::ScriptSink;
use peerlite::bucket;
use peerlite::changes::{DistributedConfig, DistributedType};
use peerlite::sync::{SyncMode, SyncStatus};
use tokio::runtime::Runtime;

use super::{Device, PATIENCE, bounded, rows_from};
use crate::cmd::demo::Story;
use crate::cmd::net;
use crate::cmd::sync::status_line;
use crate::output::{TextRows, value_text};

pub(super) fn collaboration(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
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
    let refused = crate::cmd::demo::must_fail(
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

pub(super) fn remote_query(story: &mut Story, rt: &Runtime, d: &[Device]) -> anyhow::Result<()> {
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

pub(super) fn refusals(
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
