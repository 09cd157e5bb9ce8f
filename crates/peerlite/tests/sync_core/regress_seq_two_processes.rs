//! Regression: a store written by two processes at once lost relayed rows. Each open store
//! numbers the changes it captures or applies from a counter kept in memory, resumed from the
//! database when it opens. With `peerlite serve` running and `peerlite sync` run beside it on
//! the same database (two processes, two counters), rows one of them applied from a peer were
//! numbered from its stale counter — at or below sequence numbers the other had already
//! handed out and a third device had already acknowledged — so that device never pulled them.
//! Two handles on one file in this process stand for the two processes: rows applied through
//! one of them must still be numbered after everything the other wrote.

use peerlite::sync::SyncMode;

use crate::common::*;

#[test]
fn rows_applied_by_one_handle_are_numbered_after_what_another_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let phone_serve = note_device(dir.path(), "phone", &clock);
    let phone_cli = open_store(dir.path(), "phone", &clock);
    let laptop = note_device(dir.path(), "laptop", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    // The CLI process writes three notes and the tablet takes them (its watermark: 3).
    add_notes(&phone_cli, "p", 3);
    sync(&tablet, &phone_cli, SyncMode::Pull);
    assert_eq!(has_from(&tablet, "phone").len(), 3);
    // The serving process, opened before those writes, receives the laptop's note.
    add_notes(&laptop, "l", 1);
    sync(&laptop, &phone_serve, SyncMode::Push);
    // The tablet pulls again: the laptop's note relays through the phone.
    sync(&tablet, &phone_serve, SyncMode::Pull);
    assert_eq!(has_from(&tablet, "laptop"), expected_notes("l", 1));
}

/// The same race for the app's own writes: two handles (processes) both capture local
/// changes; each numbers after everything the other committed, so a peer that pulled the
/// first one's changes still gets every change of the second.
#[test]
fn local_writes_of_two_handles_never_share_a_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock_at(T0);
    let app = note_device(dir.path(), "phone", &clock);
    let other = open_store(dir.path(), "phone", &clock);
    let tablet = note_device(dir.path(), "tablet", &clock);
    add_notes(&other, "o", 3);
    sync(&tablet, &other, SyncMode::Pull);
    add_notes(&app, "a", 2);
    sync(&tablet, &other, SyncMode::Pull);
    assert_eq!(
        has_from(&tablet, "phone").len(),
        5,
        "{:?}",
        has_from(&tablet, "phone")
    );
    let seqs: std::collections::BTreeSet<i64> = app
        .changes(Some("note"), 0)
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(seqs.len(), 5, "distinct sequence numbers: {seqs:?}");
}
