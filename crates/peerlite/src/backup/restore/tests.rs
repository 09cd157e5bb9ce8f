//! Adversary round 4, HIGH-1: a write another process committed (and was told succeeded)
//! while a client reset installed its seed was lost — in neither the final store nor any copy.
//! The copying restore took its `pre-restore` safety copy, and only then began copying the
//! backup in: a commit between the two was in neither. A reset replays the commits that came
//! after it read the store from that copy, so it lost them too. The safety copy is now taken
//! once the copy holds the database's write lock, before it writes a page: no commit can fall
//! between them. The seam runs exactly there and commits from another connection.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::{RdbStore, StoreConfig, Value};

thread_local! {
    pub(crate) static AFTER_PRE_RESTORE: RefCell<Option<Box<dyn FnMut()>>> = const { RefCell::new(None) };
}

/// Clears the seam when the test ends, however it ends.
struct Seam;

impl Seam {
    fn set(f: impl FnMut() + 'static) -> Seam {
        AFTER_PRE_RESTORE.with(|s| *s.borrow_mut() = Some(Box::new(f)));
        Seam
    }
}

impl Drop for Seam {
    fn drop(&mut self) {
        AFTER_PRE_RESTORE.with(|s| *s.borrow_mut() = None);
    }
}

/// The wall clock the tests below start from (ms since the Unix epoch).
const T0: u64 = 1_700_000_000_000;

/// A store of device `a` whose `note` table is distributed, on a clock the test drives.
fn note_store() -> (
    tempfile::TempDir,
    std::sync::Arc<crate::changes::ManualClock>,
    StoreConfig,
    RdbStore,
) {
    use crate::changes::{DistributedConfig, DistributedType};
    let dir = tempfile::tempdir().unwrap();
    let clock = std::sync::Arc::new(crate::changes::ManualClock::new(T0));
    let config = StoreConfig::new(dir.path().join("s.db"))
        .device_id("a")
        .clock(clock.clone());
    let store = RdbStore::open(config.clone()).unwrap();
    store
        .execute("CREATE TABLE note (id INTEGER PRIMARY KEY, text TEXT)", &[])
        .unwrap();
    store
        .set_distributed_tables(
            &["note"],
            DistributedType::Device,
            &DistributedConfig::default(),
        )
        .unwrap();
    (dir, clock, config, store)
}

fn names(store: &RdbStore) -> Vec<String> {
    let result = store.query_sql("SELECT x FROM t ORDER BY x", &[]).unwrap();
    result
        .rows()
        .unwrap()
        .filter_map(|r| match r.first() {
            Some(Value::Text(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn names_in(file: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let mut st = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn a_commit_while_the_restore_keeps_the_replaced_data_is_kept_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store.execute("CREATE TABLE t (x TEXT)", &[]).unwrap();
    store.execute("INSERT INTO t VALUES ('old')", &[]).unwrap();
    store.backup("bk").unwrap();
    // Another writer (another process would do the same): it holds the store, so the restore
    // copies into the live database instead of moving files.
    let other =
        Rc::new(RdbStore::open(StoreConfig::new(&path).busy_timeout(Duration::ZERO)).unwrap());
    other
        .execute("INSERT INTO t VALUES ('before')", &[])
        .unwrap();
    let committed: Rc<RefCell<Option<bool>>> = Rc::default();
    let seam = Seam::set({
        let (other, committed) = (other.clone(), committed.clone());
        move || {
            let r = other.execute("INSERT INTO t VALUES ('meanwhile')", &[]);
            *committed.borrow_mut() = Some(r.is_ok());
        }
    });
    let report = store.restore("bk").unwrap();
    drop(seam);
    assert!(!report.swapped, "another connection held the store");
    let committed = committed
        .borrow()
        .expect("the seam ran between the safety copy and the copy in");
    let pre = names_in(&report.pre_restore_backup.clone().unwrap());
    let now = names(&store);
    assert_eq!(now, ["old"], "the backup's content");
    assert!(pre.contains(&"before".to_owned()), "{pre:?}");
    if committed {
        assert!(
            pre.contains(&"meanwhile".to_owned()) || now.contains(&"meanwhile".to_owned()),
            "a commit that succeeded during the restore is in neither the safety copy {pre:?} \
             nor the restored store {now:?}"
        );
    }
    // The writer goes on once the restore is done.
    other
        .execute("INSERT INTO t VALUES ('after')", &[])
        .unwrap();
    assert_eq!(names(&store), ["after", "old"]);
}

/// Adversary round 4, LOW-1: a `peerlite sql` run right after a reset's swap warned that the
/// database "was put back from a copy of an earlier state" and took a new epoch. Another
/// process had committed to the old database after the restore made the new file: its clock,
/// and its reservation in the clock file, went past the new file's mark, so the next open
/// found the mark behind the clock file — the sign of a copy put back by hand. The swap now
/// raises the new file's mark to the old database's, holding its lock.
#[test]
fn a_commit_to_the_replaced_file_during_a_swap_does_not_leave_the_new_mark_behind() {
    let (_dir, clock, config, store) = note_store();
    store
        .execute("INSERT INTO note (text) VALUES ('old')", &[])
        .unwrap();
    store.backup("bk").unwrap();
    let mut late_mark = None;
    let mut progress = |_: crate::Progress| {
        if late_mark.is_some() {
            return;
        }
        // Another process, a minute later, while the new file is made beside the old one.
        clock.set(T0 + 60_000);
        let other = RdbStore::open(config.clone()).unwrap();
        other
            .execute("INSERT INTO note (text) VALUES ('late')", &[])
            .unwrap();
        late_mark = Some(mark_of(&other));
        other.close().unwrap();
    };
    let report = store
        .restore_with(crate::RestoreRequest::new("bk").on_progress(&mut progress))
        .unwrap();
    assert!(report.swapped, "nobody held the store at the swap");
    let late_mark = late_mark.expect("the other process committed during the copy");
    assert!(
        mark_of(&store) >= late_mark,
        "the restored database's mark {} lies behind the replaced one's {late_mark}",
        mark_of(&store)
    );
}

fn mark_of(store: &RdbStore) -> u64 {
    let r = store
        .query_sql("SELECT value FROM peerlite_meta WHERE key = 'hlc'", &[])
        .unwrap();
    match r
        .rows()
        .unwrap()
        .next()
        .and_then(|row| row.first().cloned())
    {
        Some(Value::Text(t)) => t.parse().unwrap(),
        other => panic!("no mark: {other:?}"),
    }
}

/// Adversary round 4, LOW-1, the other half: the restoring process's own clock lagged behind
/// the database's mark (another process had written since), and the restored database took
/// its mark from that clock: the next open found it behind the clock file, which the other
/// process had raised, and started an epoch. Both ways of restoring (moving files, and
/// copying while another connection holds the store) resume past the replaced mark.
#[test]
fn a_restore_resumes_past_what_other_processes_committed() {
    for hold in [false, true] {
        let (_dir, clock, config, store) = note_store();
        store.backup("bk").unwrap();
        // Another process, a minute later.
        clock.set(T0 + 60_000);
        let other = RdbStore::open(config.clone()).unwrap();
        other
            .execute("INSERT INTO note (text) VALUES ('other')", &[])
            .unwrap();
        let other_mark = mark_of(&other);
        let held = if hold {
            Some(other)
        } else {
            other.close().unwrap();
            None
        };
        let report = store.restore("bk").unwrap();
        assert_eq!(report.swapped, !hold);
        assert!(
            mark_of(&store) >= other_mark,
            "swapped {}: the restored mark {} lies behind the other process's {other_mark}",
            report.swapped,
            mark_of(&store)
        );
        drop(held);
    }
}

/// Adversary round 5, finding 7: two restores of one store at once both said "the replaced
/// data is kept in pre-restore", but one replaced state was kept nowhere — the second restore
/// set the first one's fresh `pre-restore` aside (or wrote its own over it) before it waited
/// for the lock the first held. Setting an earlier `pre-restore` aside now happens under that
/// lock: a restore that cannot have it leaves the other's copy alone.
#[test]
fn a_restore_beside_another_leaves_its_pre_restore_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
    store.execute("CREATE TABLE t (x TEXT)", &[]).unwrap();
    store.execute("INSERT INTO t VALUES ('g1')", &[]).unwrap();
    store.backup("g1").unwrap();
    store.execute("UPDATE t SET x = 'g2'", &[]).unwrap();
    store.backup("g2").unwrap();
    store.execute("UPDATE t SET x = 'now'", &[]).unwrap();
    let other =
        Rc::new(RdbStore::open(StoreConfig::new(&path).busy_timeout(Duration::ZERO)).unwrap());
    let second: Rc<RefCell<Option<crate::Result<crate::RestoreReport>>>> = Rc::default();
    let seam = Seam::set({
        let (other, second) = (other.clone(), second.clone());
        move || {
            *second.borrow_mut() = Some(other.restore("g2"));
        }
    });
    let report = store.restore("g1").unwrap();
    drop(seam);
    let second = second.borrow_mut().take().expect("the seam ran");
    assert!(
        second.is_err(),
        "the second restore ran inside the first: {second:?}"
    );
    assert_eq!(names(&store), ["g1"]);
    let kept = report.pre_restore_backup.unwrap();
    assert_eq!(
        names_in(&kept),
        ["now"],
        "the state the first restore replaced"
    );
    let aside: Vec<_> = std::fs::read_dir(kept.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pre-restore-") && !n.ends_with(".json"))
        .collect();
    assert!(
        aside.is_empty(),
        "the refused restore set a copy aside: {aside:?}"
    );
}
