//! `peerlite backup DB NAME --step-pages 16`, killed at random moments.

use super::*;

fn backup_cmd(db: &Path) -> Command {
    peerlite([
        "backup".as_ref(),
        db.as_os_str(),
        "BK".as_ref(),
        "--step-pages".as_ref(),
        "16".as_ref(),
    ])
}

#[test]
fn killing_a_backup_never_harms_the_database_or_lists_a_partial_backup() {
    let _serial = serial();
    let root = tempfile::tempdir().unwrap();
    // The database every trial starts from, and a completed backup BK of it.
    let base = root.path().join("base");
    std::fs::create_dir(&base).unwrap();
    let base_db = base.join("a.db");
    fill(&base_db, ROWS, "old");
    checkpoint(&base_db);
    let expected = state(&base_db);
    assert_eq!(expected.rows, i64::from(ROWS));
    let base_with_backup = root.path().join("base-with-backup");
    copy_dir(&base, &base_with_backup).unwrap();
    ok(&mut backup_cmd(&base_with_backup.join("a.db")));
    checkpoint(&base_with_backup.join("a.db"));
    let scratch = scratch_db(root.path());

    // Timed on copies: three unkilled runs to start, more as the trials go.
    let mut timings = 0;
    let mut pace = Pace::new((3, 2), || {
        let dir = root.path().join(format!("calibrate-{timings}"));
        timings += 1;
        copy_dir(&base, &dir).unwrap();
        let took = timed(&mut backup_cmd(&dir.join("a.db")));
        std::fs::remove_dir_all(&dir).unwrap();
        took
    });

    let (mut mid, mut tmp_seen, mut listed_after, mut verified) = (0, 0, 0, 0);
    let mut wal_shm_left = 0;
    let mut trial = 0;
    while another_trial(trial, TRIALS, mid >= MIN_MID_OPERATION) {
        // Half the trials replace an existing backup of the same name.
        let dir = root.path().join(format!("trial-{trial}"));
        copy_dir(
            if trial % 2 == 0 {
                &base
            } else {
                &base_with_backup
            },
            &dir,
        )
        .unwrap();
        let db = dir.join("a.db");
        let mut rng = Rng(0xB4C0_0000 + u64::from(trial));
        let delay = pace.delay(&mut rng);
        let kill = kill_after(&mut backup_cmd(&db), delay, &backup_dir(&db));
        pace.learn(&kill);
        mid += u32::from(kill.mid_operation);
        tmp_seen += u32::from(kill.tmp_seen);

        let (after, listed, wal_shm) = after_kill(&db);
        wal_shm_left += u32::from(wal_shm > 0);
        assert_eq!(
            after, expected,
            "trial {trial}: a backup never changes the data"
        );
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.is_empty() || names == ["BK"],
            "trial {trial}: only the backup asked for: {names:?}"
        );
        if trial % 2 == 1 {
            // Killed anywhere in replacing it, even between the renames of data and manifest,
            // the earlier BK (or the new one, if its data was in place) is listed: the open in
            // `after_kill` puts back the manifest that matches the data.
            assert_eq!(names, ["BK"], "trial {trial}: BK is still listed");
        }
        if !kill.mid_operation {
            assert_eq!(names, ["BK"], "trial {trial}: a finished backup is listed");
        }
        listed_after += u32::from(!names.is_empty());
        for (name, path) in &listed {
            assert_eq!(
                restored_state(&scratch, path),
                expected,
                "trial {trial}: backup {name} holds exactly the database"
            );
            verified += 1;
        }
        std::fs::remove_dir_all(&dir).unwrap();
        trial += 1;
    }
    let pacing = pace.summary();
    report(
        "backup kills",
        trial,
        mid,
        tmp_seen,
        &format!(
            "; {pacing}; BK listed after {listed_after} trials, {verified} listed backups \
             restored; -wal/-shm of a .tmp left after {wal_shm_left}"
        ),
    );
}
