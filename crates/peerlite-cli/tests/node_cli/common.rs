//! Devices for the end-to-end tests: a home made by `peerlite device init`, a store or two,
//! `peerlite serve` as a child process whose first stdout line gives its port, and `peerlite
//! sync` runs. Every wait is bounded by [`DEADLINE`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::support::{json_of, peerlite, run, sql, stdout_of};

/// The longest any awaited outcome may take before the test fails: a guard against hanging,
/// never a threshold the code is measured against.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Polls `ready` until it says yes; fails the test after [`DEADLINE`].
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A collaboration table, the same on every device.
pub const CREATE_NOTE: &str = "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, shop TEXT)";

/// A single-version table and its sync schema (conflict column `uuid`).
pub const CREATE_ITEM: &str = "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, title TEXT, shop TEXT)";
pub const ITEM_SCHEMA: &str = r#"{"dbSchema":[{"version":1,"bundleName":"com.example.peerlite","dbName":"notes","tables":[{"tableName":"item",
  "deviceSyncFields":["uuid","title","shop"],
  "fields":[{"columnName":"uuid","type":"Text","primaryKey":true,"notNull":true},
            {"columnName":"title","type":"Text"},
            {"columnName":"shop","type":"Text"}]}]}]}"#;

/// One device: its directory, home and id, and `notes.db` (the store every device shares by
/// name).
pub struct Device {
    pub dir: PathBuf,
    pub home: PathBuf,
    pub id: String,
    pub db: PathBuf,
}

impl Device {
    /// A device `name` under `root` with `peerlite device init --level LEVEL`.
    pub fn new(root: &Path, name: &str, level: &str) -> Device {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let home = dir.join("home");
        let out = stdout_of(
            peerlite()
                .args(["device", "init", "--name", name, "--level", level, "--home"])
                .arg(&home),
        );
        Device {
            db: dir.join("notes.db"),
            id: out.trim().to_owned(),
            home,
            dir,
        }
    }

    /// `notes.db` with the collaboration table `note`, distributed.
    pub fn with_notes(self, extra: &[&str]) -> Device {
        peerlite()
            .args(extra)
            .arg("sql")
            .arg(&self.db)
            .arg(CREATE_NOTE)
            .assert()
            .success();
        peerlite()
            .arg("distribute")
            .arg(&self.db)
            .arg("note")
            .assert()
            .success();
        self
    }

    /// `notes.db` with the single-version table `item`, distributed by its sync schema.
    pub fn with_items(self) -> Device {
        sql(&self.db, &[CREATE_ITEM]);
        let schema = self.dir.join("sync_schema.json");
        std::fs::write(&schema, ITEM_SCHEMA).unwrap();
        peerlite()
            .arg("distribute")
            .arg(&self.db)
            .arg("item")
            .args(["--mode", "single-version", "--schema"])
            .arg(&schema)
            .assert()
            .success();
        self
    }

    /// This device trusts `other` at `level`, reachable at `addr` when given.
    pub fn trusts(&self, other: &Device, level: &str, addr: Option<&str>) {
        let mut cmd = peerlite();
        cmd.args(["trust", "add", "--home"])
            .arg(&self.home)
            .arg(&other.id)
            .args(["--level", level]);
        if let Some(addr) = addr {
            cmd.args(["--addr", addr]);
        }
        cmd.assert().success();
    }

    /// Forgets `other` (to trust it again at another address or level).
    pub fn distrusts(&self, other: &Device) {
        peerlite()
            .args(["trust", "remove", "--home"])
            .arg(&self.home)
            .arg(&other.id)
            .assert()
            .success();
    }

    /// `peerlite serve --home H --listen 127.0.0.1:0 --db notes.db` (or `stores` instead of
    /// `--db notes.db` when given).
    pub fn serve(&self, stores: &[&str]) -> Served {
        self.serve_with(&["--no-mdns", "--listen", "127.0.0.1:0"], stores)
    }

    /// `peerlite serve --home H OPTIONS… --db notes.db` (or `stores`): `options` give the
    /// listening address and whether mDNS runs.
    pub fn serve_with(&self, options: &[&str], stores: &[&str]) -> Served {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("peerlite"));
        cmd.env_remove("PEERLITE_KEY")
            .env_remove("PEERLITE_HOME")
            .args(["-v", "serve"])
            .args(options)
            .arg("--home")
            .arg(&self.home);
        if stores.is_empty() {
            cmd.arg("--db").arg(&self.db);
        } else {
            cmd.args(stores);
        }
        Served::start(cmd, &self.dir.join("serve.log"))
    }

    /// `peerlite sync --home H notes.db ARGS…`: (exit code, stdout, stderr).
    pub fn sync(&self, args: &[&str]) -> (i32, String, String) {
        run(peerlite()
            .args(["sync", "--home"])
            .arg(&self.home)
            .arg(&self.db)
            .args(args))
    }

    /// `peerlite sync --home H notes.db ARGS…` started in the background.
    pub fn spawn_sync(&self, args: &[&str]) -> Running {
        let out = self.dir.join("sync.out");
        let err = self.dir.join("sync.err");
        let child = Command::new(assert_cmd::cargo::cargo_bin("peerlite"))
            .env_remove("PEERLITE_KEY")
            .args(["sync", "--home"])
            .arg(&self.home)
            .arg(&self.db)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Running { child, out, err }
    }

    /// A sync that must succeed with every device: `ID ok` lines.
    pub fn sync_ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.sync(args);
        assert_eq!(code, 0, "sync {args:?} failed:\n{out}\n{err}");
        if !args.contains(&"--json") {
            for line in out.lines() {
                assert!(line.ends_with(" ok"), "{line}");
            }
        }
        out
    }

    /// Rows of a query on this device's `notes.db`, as JSON arrays.
    pub fn rows(&self, select: &str) -> Vec<serde_json::Value> {
        let out = json_of(
            peerlite()
                .arg("--json")
                .arg("sql")
                .arg(&self.db)
                .arg(select),
        );
        out["rows"].as_array().unwrap().clone()
    }

    /// How many other devices' note tables this device holds.
    pub fn device_tables(&self) -> serde_json::Value {
        self.rows("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name GLOB 'peerlite_dev_*_note'")[0][0].clone()
    }

    /// The table holding `other`'s notes here (`peerlite table-name`).
    pub fn table_of(&self, other: &Device) -> String {
        stdout_of(
            peerlite()
                .arg("table-name")
                .arg(&self.db)
                .args(["--device", &other.id, "--table", "note"]),
        )
        .trim()
        .to_owned()
    }
}

/// A command running in the background (killed when dropped before it ended).
pub struct Running {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Running {
    /// Waits for the end: (exit code, stdout, stderr).
    pub fn finish(mut self) -> (i32, String, String) {
        let status = wait(&mut self.child);
        (
            status.code().unwrap_or(-1),
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `b` holds `rows` notes and serves them one row per batch to `a` (each trusting the other
/// at SL1): a pull from it lasts far longer than anything a test does meanwhile.
pub fn slow_pull_from(a: &Device, b: &Device, rows: u32) -> Served {
    sql(
        &b.db,
        &[&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) INSERT INTO note(text) SELECT 'row ' || i FROM n"
        )],
    );
    b.trusts(a, "SL1", None);
    let served = b.serve_with(
        &["--no-mdns", "--listen", "127.0.0.1:0", "--batch-rows", "1"],
        &[],
    );
    a.trusts(b, "SL1", Some(&served.addr));
    // The store takes its home's device id before the pull (reads during the pull then see
    // a settled store).
    a.sync_ok(&["--push"]);
    served
}

/// Waits until `a` holds some of `b`'s notes (a pull from `b` has begun).
pub fn wait_for_rows_from(a: &Device, b: &Device) {
    let table = a.table_of(b);
    wait_until("the pull to have begun", || {
        !a.rows(&format!(
            "SELECT 1 FROM sqlite_schema WHERE name = '{table}'"
        ))
        .is_empty()
    });
}

/// A running `peerlite serve`; stopped (SIGKILL) when dropped if the test did not stop it.
pub struct Served {
    child: Option<Child>,
    pub addr: String,
    pub log: PathBuf,
}

impl Served {
    fn start(mut cmd: Command, log: &Path) -> Served {
        let stderr = std::fs::File::create(log).unwrap();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        let mut served = Served {
            child: Some(child),
            addr: String::new(),
            log: log.to_path_buf(),
        };
        let first = rx.recv_timeout(DEADLINE).unwrap_or_default();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_owned);
        served.addr = addr.unwrap_or_else(|| {
            panic!(
                "serve did not print `listening on`: {first:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        served
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(self) -> ExitStatus {
        self.stop_with("-TERM")
    }

    /// Sends `signal` (`-INT`, `-TERM`) and waits for the exit.
    pub fn stop_with(mut self, signal: &str) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        let status = wait(child);
        self.child = None;
        status
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        wait(&mut child);
    }

    /// What it logged so far.
    pub fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn wait(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("the process did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `b` serves (trusting `a` at `a_level`); `a` trusts `b` at `b_level` at the address `b`
/// printed.
pub fn serve_for(a: &Device, b: &Device, a_level: &str, b_level: &str) -> Served {
    b.trusts(a, a_level, None);
    let served = b.serve(&[]);
    a.trusts(b, b_level, Some(&served.addr));
    served
}
