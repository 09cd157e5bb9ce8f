//! `peerlite restore DB NAME --step-pages 16`, killed at random moments: the database holds
//! the old state or the backup's, entirely, never a mix.

use super::*;

/// Rows of the old state (the backup holds `ROWS`).
const OLD_ROWS: u32 = ROWS - 2_000;

pub fn restore_cmd(db: &Path) -> Command {
    peerlite([
        "restore".as_ref(),
        db.as_os_str(),
        "NEW".as_ref(),
        "--step-pages".as_ref(),
        "16".as_ref(),
    ])
}

/// A database in its old state with a backup NEW of its new state, copied for every trial.
pub struct Fixture {
    pub template: Template,
    pub old: State,
    pub new: State,
    pub scratch: PathBuf,
}

impl Fixture {
    /// The backup NEW holds ROWS rows marked 'new'; the database then moves on to OLD_ROWS rows
    /// marked 'old' (the same store, so no --force is needed).
    pub fn new() -> Fixture {
        let template = Template::empty();
        let db = template.db();
        fill(&db, ROWS, "new");
        ok(&mut peerlite([
            "backup".as_ref(),
            db.as_os_str(),
            "NEW".as_ref(),
        ]));
        fill(&db, OLD_ROWS, "old");
        checkpoint(&db);
        let old = state(&db);
        let new = state(&backup_dir(&db).join("NEW"));
        assert_eq!(
            (old.rows, old.markers.clone()),
            (i64::from(OLD_ROWS), vec!["old".to_owned()])
        );
        assert_eq!(
            (new.rows, new.markers.clone()),
            (i64::from(ROWS), vec!["new".to_owned()])
        );
        let scratch = scratch_db(template.root.path());
        Fixture {
            template,
            old,
            new,
            scratch,
        }
    }

    /// Everything a kill must leave, checked on `db`.
    pub fn check(&self, what: &str, db: &Path, kill: Kill, tally: &mut Tally) {
        let (after, listed, wal_shm) = after_kill(db);
        tally.wal_shm_left += u32::from(wal_shm > 0);
        tally.mid += u32::from(kill.mid_operation);
        tally.tmp_seen += u32::from(kill.tmp_seen);
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        if after == self.old {
            tally.ended_old += 1;
            // The safety copy was complete, the restore's copy not committed: the kill landed
            // in the copy into the live database.
            tally.during_copy += u32::from(names.contains(&"pre-restore"));
        } else {
            assert_eq!(
                after, self.new,
                "{what}: neither the old state nor the backup's"
            );
            tally.ended_new += 1;
            assert!(
                names.contains(&"pre-restore"),
                "{what}: the replaced data was kept before it was replaced: {names:?}"
            );
        }
        if !kill.mid_operation {
            assert_eq!(after, self.new, "{what}: a finished restore restored");
        }
        assert!(names.contains(&"NEW"), "{what}: {names:?}");
        for (name, path) in &listed {
            let expected = match name.as_str() {
                "NEW" => &self.new,
                "pre-restore" => &self.old,
                other => panic!("{what}: unexpected backup {other}"),
            };
            assert_eq!(
                &restored_state(&self.scratch, path),
                expected,
                "{what}: backup {name} holds what it should"
            );
            tally.verified += 1;
        }
    }
}

#[derive(Debug, Default)]
pub struct Tally {
    pub mid: u32,
    tmp_seen: u32,
    pub ended_old: u32,
    pub ended_new: u32,
    during_copy: u32,
    verified: u32,
    wal_shm_left: u32,
}

impl Tally {
    pub fn summary(&self) -> String {
        format!(
            "ended old {} ({} of them killed after the safety copy, before the commit), new {}; \
             {} listed backups restored; -wal/-shm of a .tmp left after {}",
            self.ended_old, self.during_copy, self.ended_new, self.verified, self.wal_shm_left
        )
    }
}

#[test]
fn killing_a_restore_leaves_the_old_state_or_the_new_one() {
    let _serial = serial();
    let fixture = Fixture::new();
    let mut timings = 0;
    let mut pace = Pace::new((3, 2), || {
        let db = fixture.template.copy(&format!("calibrate-{timings}"));
        timings += 1;
        let took = timed(&mut restore_cmd(&db));
        assert_eq!(state(&db), fixture.new);
        Template::discard(&db);
        took
    });

    let mut tally = Tally::default();
    let mut trial = 0;
    while another_trial(
        trial,
        TRIALS,
        tally.mid >= MIN_MID_OPERATION && tally.ended_old > 0 && tally.ended_new > 0,
    ) {
        let db = fixture.template.copy(&format!("trial-{trial}"));
        let delay = pace.delay(&mut Rng(0x2E57_0000 + u64::from(trial)));
        let kill = kill_after(&mut restore_cmd(&db), delay, &backup_dir(&db));
        pace.learn(&kill);
        let what = format!("trial {trial} (killed after {delay:?})");
        fixture.check(&what, &db, kill, &mut tally);
        Template::discard(&db);
        trial += 1;
    }
    assert!(
        tally.ended_old > 0 && tally.ended_new > 0,
        "both outcomes were seen: {tally:?}"
    );
    let pacing = pace.summary();
    report(
        "restore kills",
        trial,
        tally.mid,
        tally.tmp_seen,
        &format!("; {pacing}; {}", tally.summary()),
    );
}

/// Starts the restore, waits until its safety copy is complete (its manifest appears), then
/// kills it after `extra`: the kill lands in the copy into the live database or its commit.
/// Also says whether the manifest was seen before the process ended.
fn kill_after_safety_copy(db: &Path, extra: Duration) -> (Kill, bool) {
    let manifest = backup_dir(db).join("pre-restore.manifest.json");
    let mut child = restore_cmd(db)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut appeared = None;
    let mut exited = None;
    while appeared.is_none() {
        exited = child.try_wait().unwrap();
        if exited.is_some() {
            break;
        }
        if manifest.exists() {
            appeared = Some(Instant::now());
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    // The rest of the run, measured when it ends before the kill.
    let finished_after = appeared.and_then(|since| wait_up_to(&mut child, since, extra));
    let status = match exited {
        // Reaped already: nothing to kill.
        Some(status) => status,
        None => {
            // Killing a process that has exited (reaped or not) is harmless (Ok).
            child.kill().unwrap();
            child.wait().unwrap()
        }
    };
    let mid_operation = status.signal() == Some(9);
    if !mid_operation {
        assert!(status.success(), "{status}");
    }
    let finished_after = match appeared {
        Some(_) if !mid_operation => finished_after.or(Some(extra)),
        _ => None,
    };
    (
        Kill {
            mid_operation,
            tmp_seen: false,
            finished_after,
        },
        appeared.is_some(),
    )
}

/// Trials of the test aimed at the copy, at least.
const AIMED_TRIALS: u32 = 20;

/// Kills aimed at the end of a restore: after its safety copy is listed, before the process
/// ends. Alone with the store (as here) the restore lists `pre-restore` in its last step, after
/// the swap; `restore_steps` aims at each step of both ways of restoring.
#[test]
fn killing_a_restore_during_its_copy_leaves_the_old_state_or_the_new_one() {
    let _serial = serial();
    let fixture = Fixture::new();
    // How long a restore runs once its safety copy is complete. The tail is the copy, its
    // commit, and the checkpoint as the process closes the database: kills spread over it
    // land before and after the commit.
    let mut timings = 0;
    let mut pace = Pace::new((1, 1), || {
        let db = fixture.template.copy(&format!("calibrate-{timings}"));
        timings += 1;
        let manifest = backup_dir(&db).join("pre-restore.manifest.json");
        let mut child = restore_cmd(&db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut since = None;
        while child.try_wait().unwrap().is_none() {
            if since.is_none() && manifest.exists() {
                since = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        let took = since.map_or(Duration::ZERO, |s| s.elapsed());
        Template::discard(&db);
        took.max(Duration::from_micros(100))
    });

    let mut tally = Tally::default();
    let mut appeared = 0;
    let mut trial = 0;
    while another_trial(trial, AIMED_TRIALS, appeared > AIMED_TRIALS / 2) {
        let db = fixture.template.copy(&format!("aimed-{trial}"));
        let extra = pace.delay(&mut Rng(0xC0B7_0000 + u64::from(trial)));
        let (kill, seen) = kill_after_safety_copy(&db, extra);
        if seen {
            // A run that ended before its manifest was seen says nothing of the tail.
            pace.learn(&kill);
        }
        appeared += u32::from(seen);
        let what = format!("aimed trial {trial} (killed {extra:?} after the safety copy)");
        fixture.check(&what, &db, kill, &mut tally);
        Template::discard(&db);
        trial += 1;
    }
    eprintln!(
        "restore kills aimed at the copy: {trial} trials, safety copy seen in {appeared}, {} \
         killed mid-operation; {}; {}",
        tally.mid,
        pace.summary(),
        tally.summary()
    );
    assert!(
        appeared > AIMED_TRIALS / 2,
        "the safety copy's manifest is what the kills wait for: seen in {appeared} of {trial}"
    );
}
