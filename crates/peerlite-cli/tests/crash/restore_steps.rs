//! `peerlite restore`, killed inside each of its steps: the database holds the old state or the
//! backup's, entirely, and every backup listed after the kill is whole.
//!
//! A restore alone with the store moves files (copy the backup beside the database, check and
//! link the old file, rename the new one over it, install the old one as `pre-restore`); one
//! with another connection on the store copies (a `pre-restore` copy, the copy into the live
//! database, its checkpoint). Kills spread over the whole run land mostly in the longest step,
//! so here each step is aimed at: the restore logs (`-vv`) the step it enters, and the kill
//! comes a random moment after that line, within the time the rest of an unkilled run takes.

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

use peerlite_testkit::unread::UnreadShell;

use super::restore_kills::{Fixture, Tally, restore_cmd};
use super::*;

/// Trials aimed at each step.
const PER_STEP: u32 = 6;

/// The steps of a restore that moves files, and of one that copies.
const SWAP_STEPS: [&str; 4] = ["copy beside", "link", "swap", "finish"];
const COPY_STEPS: [&str; 3] = ["pre-restore copy", "copy in", "checkpoint"];
/// The step of a swap that finds, after its rename, a program that opened the old file just
/// before it: the old file goes back and the restore copies.
const UNDO_STEPS: [&str; 1] = ["undo"];

/// Who else is on the store while the restore runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Others {
    /// Nobody: the restore moves files.
    None,
    /// A program that has read the store (a lock): the restore copies.
    Held,
    /// A program that opens the file between the swap's last look and its rename (debug
    /// builds pause there when `PEERLITE_TEST_SWAP_GATE` names a file): the rename is undone
    /// and the restore copies.
    Late,
}

/// Another program holding the store: the `sqlite3` shell, after one read (in WAL mode it
/// keeps a shared lock on the file while it is open).
struct Holder(Child);

impl Holder {
    fn start(db: &Path) -> Holder {
        let mut child = Command::new("sqlite3")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(b"SELECT 'held' FROM sqlite_schema LIMIT 1;\n")
            .unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the restore on `db` with its steps logged; kills it `delay` after it logged `step`
/// (never, with `None`: then how long the rest took is measured). Returns how it ended and
/// whether the step was seen.
fn run_to_step(
    db: &Path,
    step: &str,
    delay: Option<Duration>,
    others: Others,
) -> (Kill, Option<Duration>) {
    let mut cmd = restore_cmd(db);
    let gate = with_suffix(db, ".gate");
    if others == Others::Late {
        cmd.env("PEERLITE_TEST_SWAP_GATE", &gate);
    }
    cmd.arg("-vv")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let marker = format!("step=\"{step}\"");
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(&marker) {
                let _ = tx.send((true, Instant::now()));
            } else if line.contains("step=\"gate\"") {
                let _ = tx.send((false, Instant::now()));
            }
            lines.push(line);
        }
        lines
    });
    // Wait for the step (or for the end of the run); at the gate, the late program opens
    // the file and the restore goes on.
    let mut late = None;
    let seen = loop {
        match rx.recv_timeout(Duration::from_micros(100)) {
            Ok((true, at)) => break Some(at),
            Ok((false, _)) => {
                late = Some(UnreadShell::open(db));
                std::fs::write(&gate, b"").unwrap();
                continue;
            }
            Err(_) => {}
        }
        if child.try_wait().unwrap().is_some() {
            break rx
                .try_recv()
                .ok()
                .filter(|(step, _)| *step)
                .map(|(_, at)| at);
        }
    };
    let rest = match (seen, delay) {
        (Some(at), Some(delay)) => wait_up_to(&mut child, at, delay),
        (Some(at), None) => {
            child.wait().unwrap();
            Some(at.elapsed())
        }
        (None, _) => None,
    };
    let _ = child.kill();
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    drop(late);
    let mid_operation = status.signal() == Some(9);
    if !mid_operation {
        assert!(status.success(), "{status}: {}", lines.join("\n"));
    }
    (
        Kill {
            mid_operation,
            tmp_seen: false,
            finished_after: if mid_operation { None } else { rest },
        },
        seen.map(|at| at.elapsed()),
    )
}

/// Kills aimed at each step of `steps`, with `others` on the store.
fn kill_each_step(steps: &[&str], others: Others) {
    let held = others == Others::Held;
    let _serial = serial();
    let fixture = Fixture::new();
    let mut tally = Tally::default();
    let mut report = Vec::new();
    for (s, step) in steps.iter().enumerate() {
        // How long the rest of an unkilled run takes after the step begins.
        let mut rest = Vec::new();
        for i in 0..3 {
            let db = fixture.template.copy(&format!("time-{s}-{i}"));
            let holder = held.then(|| Holder::start(&db));
            let (kill, seen) = run_to_step(&db, step, None, others);
            assert!(seen.is_some(), "the restore never entered step {step}");
            rest.push(kill.finished_after.unwrap_or(Duration::ZERO));
            drop(holder);
            Template::discard(&db);
        }
        let window = (median(rest) * 3 / 2).max(Duration::from_micros(200));
        let (mut entered, mut killed) = (0, 0);
        let mut trial = 0;
        while another_trial(trial, PER_STEP, killed > PER_STEP / 2) {
            let db = fixture.template.copy(&format!("step-{s}-{trial}"));
            let holder = held.then(|| Holder::start(&db));
            let delay = Rng(0x57E9_0000 + (s as u64) * 1000 + u64::from(trial)).below(window);
            let (kill, seen) = run_to_step(&db, step, Some(delay), others);
            entered += u32::from(seen.is_some());
            killed += u32::from(kill.mid_operation);
            let what = format!("step {step}, trial {trial} (killed {delay:?} after it began)");
            fixture.check(&what, &db, kill, &mut tally);
            drop(holder);
            Template::discard(&db);
            trial += 1;
        }
        assert_eq!(entered, trial, "every run entered step {step}");
        assert!(
            killed > 0,
            "no kill landed after step {step} began ({trial} trials)"
        );
        report.push(format!("{step}: {killed} of {trial} killed in it or after"));
    }
    eprintln!(
        "restore kills aimed at each step ({}): {}; {}",
        match others {
            Others::None => "moving files",
            Others::Held => "copying",
            Others::Late => "a program opening the file at the rename",
        },
        report.join(", "),
        tally.summary()
    );
    assert!(tally.ended_old > 0 && tally.ended_new > 0, "{tally:?}");
}

#[test]
fn a_restore_moving_files_killed_in_any_step_leaves_the_old_state_or_the_new_one() {
    kill_each_step(&SWAP_STEPS, Others::None);
}

#[test]
fn a_restore_copying_beside_another_connection_killed_in_any_step_leaves_one_state() {
    kill_each_step(&COPY_STEPS, Others::Held);
}

/// A program opens the database between the swap's last look for other holders and its
/// rename (it would read the old file through the new one's WAL): the look after the rename
/// sees it and puts the old file back. Killed in that undo, the restore leaves the new
/// database with the old one as `pre-restore` (the journal finishes the swap) or the old
/// one; unkilled, it copies and ends with the new state.
#[test]
fn a_restore_undoing_its_swap_for_a_late_program_killed_in_the_undo_leaves_one_state() {
    kill_each_step(&UNDO_STEPS, Others::Late);
}

/// A program that opens the database between the swap's last look for other holders and its
/// rename first reads it after the restore, with another connection's write in the new
/// database's WAL. Before the look after the rename, the swap went on: the program read the
/// old file through the new one's WAL (a mix) and could not write. Now the rename is undone
/// and the restore copies: the program reads the new state with that write, wholly, its own
/// row lands in the store, and `pre-restore` holds the old state.
#[test]
fn a_program_opening_the_store_at_the_swap_reads_and_writes_the_restored_database() {
    let _serial = serial();
    let fixture = Fixture::new();
    let db = fixture.template.copy("late");
    let gate = with_suffix(&db, ".gate");
    let mut child = restore_cmd(&db)
        .arg("-vv")
        .env("PEERLITE_TEST_SWAP_GATE", &gate)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let mut late = None;
    // Bounded by the run: the log ends when the restore does.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let at_gate = line.contains("step=\"gate\"");
        log.push(line);
        if at_gate {
            late = Some(UnreadShell::open(&db));
            std::fs::write(&gate, b"").unwrap();
            break;
        }
    }
    log.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", log.join("\n"));
    let late = late.expect("the restore paused at its gate");
    assert!(
        log.iter().any(|l| l.contains("step=\"undo\"")),
        "the rename was undone: {}",
        log.join("\n")
    );
    let why = format!(
        "why=another process (pid {}) opened the database during the swap",
        late.pid()
    );
    assert!(
        log.iter()
            .any(|l| l.contains("restoring by copy") && l.contains(&why)),
        "the restore says why it copied: {}",
        log.join("\n")
    );

    // Another connection writes to the restored store and keeps its WAL.
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute("INSERT INTO t(marker, pad) VALUES ('later', x'00')", [])
        .unwrap();
    let counts = "SELECT 'rows:' || count(*) || ',' || sum(marker = 'new') || ',' || \
                  sum(marker = 'later') || ',' || sum(marker = 'late') FROM t;";
    let out = late.run(&format!(
        "{counts}\nINSERT INTO t(marker, pad) VALUES ('late', x'01');\n{counts}"
    ));
    assert!(out.success && out.stderr.is_empty(), "{out:?}");
    let rows = fixture.new.rows;
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            format!("rows:{},{rows},1,0", rows + 1),
            format!("rows:{},{rows},1,1", rows + 2)
        ],
        "the program read the restored database, with the other connection's row"
    );
    drop(other);
    let after = state(&db);
    assert_eq!(
        (after.rows, after.markers),
        (rows + 2, vec!["late".into(), "later".into(), "new".into()])
    );
    let pre = backup_dir(&db).join("pre-restore");
    assert_eq!(restored_state(&fixture.scratch, &pre), fixture.old);
    Template::discard(&db);
}
