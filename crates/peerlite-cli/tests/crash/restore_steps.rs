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

use super::restore_kills::{Fixture, Tally, restore_cmd};
use super::*;

/// Trials aimed at each step.
const PER_STEP: u32 = 6;

/// The steps of a restore that moves files, and of one that copies.
const SWAP_STEPS: [&str; 4] = ["copy beside", "link", "swap", "finish"];
const COPY_STEPS: [&str; 3] = ["pre-restore copy", "copy in", "checkpoint"];

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
fn run_to_step(db: &Path, step: &str, delay: Option<Duration>) -> (Kill, Option<Duration>) {
    let mut cmd = restore_cmd(db);
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
                let _ = tx.send(Instant::now());
            }
            lines.push(line);
        }
        lines
    });
    // Wait for the step (or for the end of the run).
    let seen = loop {
        if let Ok(at) = rx.recv_timeout(Duration::from_micros(100)) {
            break Some(at);
        }
        if child.try_wait().unwrap().is_some() {
            break rx.try_recv().ok();
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

/// Kills aimed at each step of `steps`; `held` runs each restore with another program
/// holding the store (the restore copies).
fn kill_each_step(steps: &[&str], held: bool) {
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
            let (kill, seen) = run_to_step(&db, step, None);
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
            let (kill, seen) = run_to_step(&db, step, Some(delay));
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
        if held { "copying" } else { "moving files" },
        report.join(", "),
        tally.summary()
    );
    assert!(tally.ended_old > 0 && tally.ended_new > 0, "{tally:?}");
}

#[test]
fn a_restore_moving_files_killed_in_any_step_leaves_the_old_state_or_the_new_one() {
    kill_each_step(&SWAP_STEPS, false);
}

#[test]
fn a_restore_copying_beside_another_connection_killed_in_any_step_leaves_one_state() {
    kill_each_step(&COPY_STEPS, true);
}
