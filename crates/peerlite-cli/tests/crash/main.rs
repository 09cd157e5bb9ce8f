#![allow(clippy::unwrap_used)]
//! Crash tests: real `peerlite backup` and `peerlite restore` processes killed with SIGKILL at
//! a random moment (a deterministic PRNG per trial, delays spread over 1.5 × the measured
//! duration of an unkilled run). After every kill the database must open and pass the full
//! check, a restore must have left the old state or the new one exactly, and every backup
//! `peerlite backups` lists must be complete and restorable.
//!
//! The kills must land while the process runs, whatever else the machine is doing. They once
//! did not: the delays were calibrated once, from three runs at the start, and when those ran
//! on a loaded machine (other processes compiling) and the trials on a quieter one, most
//! trials finished before their kill ("only 19 of 50 kills landed"). Now [`Pace`] follows
//! the machine's speed through the whole test, and [`another_trial`] keeps running trials
//! (up to a hard cap) until the test has seen what it needs.

mod backup_kills;
mod leftovers;
mod repair_kills;
mod restore_kills;
mod restore_steps;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use peerlite_testkit::copy_dir;
use serde_json::Value as Json;

/// Trials per test, at least.
pub const TRIALS: u32 = 50;
/// Of which at least this many must kill the process while it runs.
pub const MIN_MID_OPERATION: u32 = 20;
/// Rows in the test database (~200-byte blobs: a few MB, tens of ms to copy).
pub const ROWS: u32 = 20_000;

/// The two tests time processes: they run one after the other, not side by side.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `peerlite ARGS`, without a key from the environment.
pub fn peerlite<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_peerlite"));
    cmd.env_remove("PEERLITE_KEY").args(args);
    cmd
}

/// Runs the command to the end and returns its output.
pub fn output(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap()
}

/// Runs the command, asserts success, returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Fills table `t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)` with `rows` rows marked
/// `marker`, replacing what it held.
pub fn fill(db: &Path, rows: u32, marker: &str) {
    ok(peerlite(["sql".as_ref(), db.as_os_str()]).args([
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)".to_owned(),
        "DELETE FROM t".to_owned(),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO t(marker, pad) SELECT '{marker}', randomblob(200) FROM n"
        ),
    ]));
}

/// The state of table `t`: row count, distinct markers, and a hash of every row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub rows: i64,
    pub markers: Vec<String>,
    pub hash: u64,
}

/// Reads the state with rusqlite, after asserting `PRAGMA integrity_check` says ok.
pub fn state(db: &Path) -> State {
    let conn = rusqlite::Connection::open(db).unwrap();
    let verdict: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(verdict, ["ok"], "integrity_check of {}", db.display());
    let markers: Vec<String> = conn
        .prepare("SELECT DISTINCT marker FROM t ORDER BY marker")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT id, marker, pad FROM t ORDER BY id")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let (mut count, mut hash) = (0i64, 0xcbf2_9ce4_8422_2325u64);
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    while let Some(row) = rows.next().unwrap() {
        count += 1;
        eat(&row.get::<_, i64>(0).unwrap().to_le_bytes());
        eat(row.get::<_, String>(1).unwrap().as_bytes());
        eat(&row.get::<_, Vec<u8>>(2).unwrap());
    }
    State {
        rows: count,
        markers,
        hash,
    }
}

/// Moves the WAL into the database file and removes it (closing the last connection).
pub fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();
    drop(conn);
    assert!(!with_suffix(db, "-wal").exists());
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(suffix);
    PathBuf::from(os)
}

/// The default backup directory of a database: `backup/<file>/` beside it.
pub fn backup_dir(db: &Path) -> PathBuf {
    db.parent()
        .unwrap()
        .join("backup")
        .join(db.file_name().unwrap())
}

/// Names of the files in a directory (empty when it does not exist).
pub fn files_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A database directory (`base/a.db`, with whatever lies beside it) built once and copied
/// afresh for every trial.
pub struct Template {
    pub root: tempfile::TempDir,
    base: PathBuf,
}

impl Template {
    /// An empty `base` directory in a new temporary root.
    pub fn empty() -> Template {
        let root = tempfile::tempdir().unwrap();
        let base = root.path().join("base");
        std::fs::create_dir(&base).unwrap();
        Template { root, base }
    }

    /// The database of the template, to build it.
    pub fn db(&self) -> PathBuf {
        self.base.join("a.db")
    }

    /// A fresh copy of the template named `label`; returns its database.
    pub fn copy(&self, label: &str) -> PathBuf {
        let dir = self.root.path().join(label);
        copy_dir(&self.base, &dir).unwrap();
        dir.join("a.db")
    }

    /// Removes the copy holding `db`. Every process that worked on it has been reaped and
    /// no store of this process has it open, so nothing else can touch it meanwhile; if the
    /// removal fails anyway, the panic says what was there.
    pub fn discard(db: &Path) {
        let dir = db.parent().unwrap();
        if let Err(e) = std::fs::remove_dir_all(dir) {
            panic!(
                "removing {}: {e}; the directory {}; files left: {:?}, in its backup directory: \
                 {:?}",
                dir.display(),
                if dir.exists() { "exists" } else { "is gone" },
                files_in(dir),
                files_in(&backup_dir(db))
            );
        }
    }
}

/// SplitMix64: a tiny deterministic PRNG.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in `0..limit`.
    pub fn below(&mut self, limit: Duration) -> Duration {
        let micros = u64::try_from(limit.as_micros()).unwrap().max(1);
        Duration::from_micros(self.next_u64() % micros)
    }
}

/// Runs the command to the end and returns how long it took (it must succeed).
pub fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    ok(cmd);
    start.elapsed()
}

/// The median of the durations.
pub fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

/// Whether a kill test runs another trial after `done`: always up to `at_least`, then while
/// it has not yet seen what it needs (`seen_enough`: enough kills landed mid-operation, every
/// outcome seen), up to three times `at_least`.
pub fn another_trial(done: u32, at_least: u32, seen_enough: bool) -> bool {
    done < at_least || (!seen_enough && done < 3 * at_least)
}

/// After this many kills in a row landed mid-operation, one unkilled run is timed again: the
/// machine may have slowed down, and kills would then all land early in the operation.
const RECHECK_AFTER_KILLS: u32 = 5;

/// Kill delays that follow the machine's speed. A delay is drawn in `0..window`, the window
/// being `spread` × the median of the last three runs that ran to the end: the unkilled runs
/// timed at the start, every trial that finished before its kill (the machine got faster),
/// and an unkilled run timed after [`RECHECK_AFTER_KILLS`] kills in a row (it may have got
/// slower). No duration is a threshold: the window only spreads the kills over the run.
pub struct Pace<'a> {
    time_a_run: Box<dyn FnMut() -> Duration + 'a>,
    /// Numerator and denominator of the spread.
    spread: (u32, u32),
    recent: Vec<Duration>,
    landed_in_a_row: u32,
    /// Runs timed or measured after the first three.
    pub recalibrations: u32,
    /// The smallest and largest windows used.
    pub range: (Duration, Duration),
}

impl<'a> Pace<'a> {
    /// Times three unkilled runs with `time_a_run` (which runs the command on a fresh copy
    /// and returns how long it took); windows are `spread.0 / spread.1` × the median.
    pub fn new(spread: (u32, u32), time_a_run: impl FnMut() -> Duration + 'a) -> Pace<'a> {
        let mut time_a_run = Box::new(time_a_run);
        let recent: Vec<Duration> = (0..3).map(|_| time_a_run()).collect();
        let mut pace = Pace {
            time_a_run,
            spread,
            recent,
            landed_in_a_row: 0,
            recalibrations: 0,
            range: (Duration::MAX, Duration::ZERO),
        };
        pace.note_window();
        pace
    }

    /// The window kills are spread over now.
    pub fn window(&self) -> Duration {
        median(self.recent.clone()) * self.spread.0 / self.spread.1
    }

    /// The delay of a trial.
    pub fn delay(&self, rng: &mut Rng) -> Duration {
        rng.below(self.window())
    }

    /// Learns from how a trial ended.
    pub fn learn(&mut self, kill: &Kill) {
        match kill.finished_after {
            Some(took) => {
                self.landed_in_a_row = 0;
                self.remember(took);
            }
            None => {
                self.landed_in_a_row += 1;
                if self.landed_in_a_row >= RECHECK_AFTER_KILLS {
                    self.landed_in_a_row = 0;
                    let took = (self.time_a_run)();
                    self.remember(took);
                }
            }
        }
    }

    fn remember(&mut self, took: Duration) {
        if self.recent.len() == 3 {
            self.recent.remove(0);
        }
        self.recent.push(took);
        self.recalibrations += 1;
        self.note_window();
    }

    fn note_window(&mut self) {
        let w = self.window();
        self.range = (self.range.0.min(w), self.range.1.max(w));
    }

    /// How the windows went, for the report.
    pub fn summary(&self) -> String {
        format!(
            "delays spread over {:?}..{:?} (× {}/{} of a recent unkilled run, {} re-timings)",
            self.range.0, self.range.1, self.spread.0, self.spread.1, self.recalibrations
        )
    }
}

/// How a killed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    /// SIGKILL ended it: it was still running when the kill came.
    pub mid_operation: bool,
    /// A `.tmp` file of a backup existed in `watch` just before the kill.
    pub tmp_seen: bool,
    /// It finished (successfully) before the kill, after about this long.
    pub finished_after: Option<Duration>,
}

/// Waits until `delay` has passed since `since`, unless the child ends first: then returns
/// how long after `since` it ended (to a fraction of a millisecond).
pub fn wait_up_to(child: &mut Child, since: Instant, delay: Duration) -> Option<Duration> {
    loop {
        let elapsed = since.elapsed();
        if elapsed >= delay {
            return None;
        }
        if child.try_wait().unwrap().is_some() {
            return Some(elapsed);
        }
        std::thread::sleep((delay - elapsed).min(Duration::from_micros(200)));
    }
}

/// Starts the command, sends SIGKILL after `delay`, and reaps it. A run that finished before
/// the kill must have succeeded; how long it took is measured.
pub fn kill_after(cmd: &mut Command, delay: Duration, watch: &Path) -> Kill {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let finished_after = wait_up_to(&mut child, start, delay);
    let tmp_seen = files_in(watch).iter().any(|f| f.contains(".tmp"));
    // Killing a process that has exited (reaped or not) is harmless (Ok).
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let mid_operation = out.status.signal() == Some(9);
    if !mid_operation {
        assert!(
            out.status.success(),
            "{cmd:?} finished before the kill but failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Kill {
        mid_operation,
        tmp_seen,
        // Exited between the last look and the kill: it ran about as long as the delay.
        finished_after: finished_after.or((!mid_operation).then_some(delay)),
    }
}

/// What every kill must leave: the database opens and passes `peerlite check --full` and
/// rusqlite's integrity_check; `peerlite backups --json` lists no `.tmp` and only verified
/// backups, and afterwards no leftover `.tmp` (or its `-journal`) remains. Returns the
/// database's state, the listed backups as (name, path), and how many `-wal`/`-shm` files of
/// a temporary backup are left.
pub fn after_kill(db: &Path) -> (State, Vec<(String, PathBuf)>, usize) {
    let out = output(&mut peerlite([
        "check".as_ref(),
        db.as_os_str(),
        "--full".as_ref(),
    ]));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "ok\n"),
        "check --full after the kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !with_suffix(db, ".corrupt").exists(),
        "no corruption was ever seen"
    );
    let state = state(db);
    let list: Json = serde_json::from_str(
        ok(&mut peerlite([
            "--json".as_ref(),
            "backups".as_ref(),
            db.as_os_str(),
        ]))
        .trim(),
    )
    .unwrap();
    let mut listed = Vec::new();
    for b in list.as_array().unwrap() {
        let name = b["name"].as_str().unwrap().to_owned();
        assert!(!name.ends_with(".tmp") && !name.contains(".tmp"), "{b}");
        assert_eq!(b["verified"], true, "a listed backup is complete: {b}");
        let path = PathBuf::from(b["path"].as_str().unwrap());
        assert!(path.is_file(), "{b}");
        listed.push((name, path));
    }
    let (removable, wal_shm): (Vec<String>, Vec<String>) = files_in(&backup_dir(db))
        .into_iter()
        .filter(|f| f.contains(".tmp"))
        .partition(|f| f.ends_with(".tmp") || f.ends_with(".tmp-journal"));
    assert!(
        removable.is_empty(),
        "opening the store removes what the killed process left: {removable:?}"
    );
    // `-wal` / `-shm` of a temporary file are not cleaned up (see leftovers.rs).
    (state, listed, wal_shm.len())
}

/// Restores the backup at `path` into the scratch database (which verifies its checksum and
/// integrity first) and returns the state it holds.
pub fn restored_state(scratch: &Path, path: &Path) -> State {
    let out = output(&mut peerlite([
        "restore".as_ref(),
        scratch.as_os_str(),
        path.as_os_str(),
        "--force".as_ref(),
    ]));
    assert!(
        out.status.success(),
        "a listed backup restores: {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    state(scratch)
}

/// A scratch database to restore listed backups into.
pub fn scratch_db(dir: &Path) -> PathBuf {
    let scratch = dir.join("scratch.db");
    ok(&mut peerlite([
        "sql".as_ref(),
        scratch.as_os_str(),
        "SELECT 1".as_ref(),
    ]));
    scratch
}

/// Prints and checks the counts of one test.
pub fn report(what: &str, trials: u32, mid: u32, tmp_seen: u32, extra: &str) {
    eprintln!(
        "{what}: {trials} trials, {mid} killed mid-operation, {} finished before the kill, \
         {tmp_seen} with a backup .tmp on disk at the kill{extra}",
        trials - mid
    );
    assert!(
        mid >= MIN_MID_OPERATION,
        "{what}: only {mid} of {trials} kills landed while the process ran"
    );
}
