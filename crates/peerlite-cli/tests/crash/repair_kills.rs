//! `peerlite repair DB`, killed with SIGKILL at random moments (issue 9, defect 1).
//!
//! Repair used to move the damaged file and its flag into quarantine, then salvage, then put
//! the backup back: a kill after the move left nothing at the path, the next command
//! silently created an empty store there, and `repair` answered "nothing to repair" while
//! the verified backup was never put back. Now, after every kill, the store either still
//! reports 14800011 (through `sql`, `check` and — once the repair's journal is written —
//! `backups`), with its damaged file untouched at the path and no command creating anything
//! over it, and the next `peerlite repair` finishes the repair; or it is repaired. Either
//! way the quarantine ends up holding the damaged bytes, the store holds every row of the
//! backup, and the salvage file the rows written after it. `--step-pause-ms` spreads the
//! kills over every step of the repair.

use super::*;

/// Rows in the backup, and rows written after it.
const BACKED_UP: u32 = 6_000;
const AFTER: u32 = 1_500;
/// Kills that must land while the repair runs.
const MIN_KILLS: u32 = 40;
const MAX_TRIALS: u32 = 120;

fn repair_cmd(db: &Path) -> Command {
    peerlite([
        "repair".as_ref(),
        db.as_os_str(),
        "--step-pause-ms".as_ref(),
        "15".as_ref(),
    ])
}

/// Overwrites pages at these fractions of the file with pseudo-random bytes.
fn damage(db: &Path, fractions: &[f64]) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap();
    let pages = bytes.len() / 4096;
    let mut rng = Rng(0xDA3A_6E00);
    for f in fractions {
        let page = ((pages as f64) * f) as usize;
        for b in &mut bytes[page * 4096..(page + 1) * 4096] {
            *b = rng.next_u64() as u8;
        }
    }
    std::fs::write(db, &bytes).unwrap();
    bytes
}

struct Fixture {
    template: Template,
    damaged: Vec<u8>,
    backed_up: State,
}

impl Fixture {
    fn new() -> Fixture {
        let template = Template::empty();
        let db = template.db();
        fill(&db, BACKED_UP, "backed-up");
        ok(&mut peerlite([
            "backup".as_ref(),
            db.as_os_str(),
            "GOOD".as_ref(),
        ]));
        let backed_up = state(&backup_dir(&db).join("GOOD"));
        ok(peerlite(["sql".as_ref(), db.as_os_str()]).arg(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {AFTER}) \
             INSERT INTO t(marker, pad) SELECT 'after', randomblob(200) FROM n"
        )));
        checkpoint(&db);
        let damaged = damage(&db, &[0.35, 0.36, 0.5, 0.62]);
        // `check` finds it and flags it.
        let out = output(&mut peerlite(["check".as_ref(), db.as_os_str()]));
        assert_eq!(out.status.code(), Some(3));
        assert!(with_suffix(&db, ".corrupt").exists());
        assert_eq!(std::fs::read(&db).unwrap(), damaged);
        Fixture {
            template,
            damaged,
            backed_up,
        }
    }
}

/// What a kill left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// Flagged, no repair journal yet (killed while checking the file).
    Flagged,
    /// A repair is pending, the damaged file still at the path.
    Pending,
    /// A repair is pending, the backup's copy already at the path.
    PendingInstalled,
    /// Repaired.
    Repaired,
}

/// The code of a failed command's `error[CODE]` line, after checking its hint names repair.
fn refused(out: &Output, what: &str) -> u32 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code: u32 = stderr
        .strip_prefix("error[")
        .and_then(|s| s.split_once(']'))
        .map(|(c, _)| c.parse().unwrap())
        .unwrap_or_else(|| panic!("{what}: {stderr}"));
    assert!(stderr.contains("peerlite repair"), "{what}: {stderr}");
    code
}

fn after_kill(f: &Fixture, db: &Path, what: &str) -> Left {
    assert!(db.exists(), "{what}: nothing at the database path");
    let pending = with_suffix(db, ".repair").exists();
    let left = match (pending, with_suffix(db, ".corrupt").exists()) {
        (true, _) => Left::Pending,
        (false, true) => Left::Flagged,
        (false, false) => Left::Repaired,
    };
    // At the path: the damaged file, or (the journal not yet removed) the backup's copy.
    let at_path = std::fs::read(db).unwrap();
    let installed = at_path == std::fs::read(backup_dir(db).join("GOOD")).unwrap();
    let left = match left {
        Left::Flagged => {
            assert!(at_path == f.damaged, "{what}: the damaged file changed");
            left
        }
        Left::Pending if installed => Left::PendingInstalled,
        Left::Pending => {
            assert!(
                at_path == f.damaged,
                "{what}: {} bytes at the path",
                at_path.len()
            );
            left
        }
        other => other,
    };
    // Every command sees the same thing, and none creates a store over the damaged one.
    let sql = output(&mut peerlite([
        "sql".as_ref(),
        db.as_os_str(),
        "SELECT count(*) FROM t".as_ref(),
    ]));
    let check = output(&mut peerlite(["check".as_ref(), db.as_os_str()]));
    let backups = output(&mut peerlite(["backups".as_ref(), db.as_os_str()]));
    match left {
        Left::Repaired => {
            assert!(sql.status.success(), "{what}: {sql:?}");
            assert_eq!(check.status.code(), Some(0), "{what}: {check:?}");
            assert!(backups.status.success(), "{what}: {backups:?}");
        }
        Left::Flagged | Left::Pending | Left::PendingInstalled => {
            assert_eq!(
                (sql.status.code(), refused(&sql, what)),
                (Some(2), 14_800_011),
                "{what}"
            );
            assert_eq!(
                (check.status.code(), refused(&check, what)),
                (Some(3), 14_800_011),
                "{what}"
            );
            // The backups are listed whatever state the store is in (nothing is opened).
            assert!(backups.status.success(), "{what}: {backups:?}");
            assert!(
                std::fs::read(db).unwrap() == at_path,
                "{what}: a command wrote over it"
            );
        }
    }
    // The next repair finishes the job — never "nothing to repair" while it is pending.
    let out = ok(&mut peerlite(["repair".as_ref(), db.as_os_str()]));
    let first = out.lines().next().unwrap_or_default();
    match left {
        Left::Repaired => assert_eq!(first, "ok: nothing to repair", "{what}"),
        _ => assert_eq!(first, "repaired from GOOD", "{what}: {out}"),
    }
    left
}

/// The end state of every trial: the backup's rows, the damaged bytes in quarantine, the
/// rows written after the backup in the salvage file, and nothing left over.
fn assert_repaired(f: &Fixture, db: &Path, what: &str) {
    assert_eq!(state(db), f.backed_up, "{what}: the store holds the backup");
    assert!(!with_suffix(db, ".repair").exists(), "{what}");
    assert!(!with_suffix(db, ".corrupt").exists(), "{what}");
    let dir = db.parent().unwrap();
    // Folders: `quarantine/a.db.lock` is the repairs' lock file.
    let quarantine: Vec<PathBuf> = std::fs::read_dir(dir.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(quarantine.len(), 1, "{what}: {quarantine:?}");
    let q = &quarantine[0];
    assert!(
        std::fs::read(q.join("a.db")).unwrap() == f.damaged,
        "{what}: quarantined bytes"
    );
    assert!(q.join("a.db.corrupt").is_file(), "{what}");
    let leftovers: Vec<String> = files_in(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    let salvage = rusqlite::Connection::open(dir.join("a.salvage.db")).unwrap();
    let after: i64 = salvage
        .query_row("SELECT count(*) FROM t WHERE marker = 'after'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(after > 0, "{what}: the rows after the backup were salvaged");
}

#[test]
fn killing_a_repair_leaves_the_damaged_store_or_the_repaired_one() {
    let _serial = serial();
    let f = Fixture::new();
    let mut timings = 0;
    let mut pace = Pace::new((1, 1), || {
        let db = f.template.copy(&format!("calibrate-{timings}"));
        timings += 1;
        let took = timed(&mut repair_cmd(&db));
        assert_repaired(&f, &db, "an unkilled repair");
        Template::discard(&db);
        took
    });

    let mut kills = 0;
    let mut seen: Vec<Left> = Vec::new();
    let mut trial = 0;
    let both_sides =
        |seen: &[Left]| seen.contains(&Left::Pending) && seen.contains(&Left::PendingInstalled);
    while (kills < MIN_KILLS || !both_sides(&seen)) && trial < MAX_TRIALS {
        let db = f.template.copy(&format!("trial-{trial}"));
        let delay = pace.delay(&mut Rng(0x4E9A_1200 + u64::from(trial)));
        let kill = kill_after(&mut repair_cmd(&db), delay, db.parent().unwrap());
        pace.learn(&kill);
        let what = format!("trial {trial} (killed after {delay:?})");
        let left = after_kill(&f, &db, &what);
        if !kill.mid_operation {
            assert_eq!(left, Left::Repaired, "{what}: a finished repair repaired");
        }
        assert_repaired(&f, &db, &what);
        kills += u32::from(kill.mid_operation);
        seen.push(left);
        Template::discard(&db);
        trial += 1;
    }
    let count = |l: Left| seen.iter().filter(|s| **s == l).count();
    eprintln!(
        "repair kills: {trial} trials, {kills} killed mid-operation; left flagged {}, pending with \
         the damaged file {}, pending with the backup in place {}, repaired {}; {}",
        count(Left::Flagged),
        count(Left::Pending),
        count(Left::PendingInstalled),
        count(Left::Repaired),
        pace.summary()
    );
    assert!(
        kills >= MIN_KILLS,
        "only {kills} kills landed while repair ran"
    );
    assert!(
        count(Left::Pending) > 0 && count(Left::PendingInstalled) > 0,
        "kills landed before and after the backup was put in place"
    );
}
