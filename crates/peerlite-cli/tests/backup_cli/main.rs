#![allow(clippy::unwrap_used)]
//! End-to-end tests of the backup and repair commands of the `peerlite` binary — `backup`,
//! `backups`, `restore`, `delete-backup`, `check`, `repair` — for a database file and for a
//! key-value store (`--kv`): real processes, real files, the documented output shapes, JSON
//! values and exit codes (0 ok, 1 usage, 2 failed operation, 3 corruption found).

mod corruption;
mod db;
mod disk_full;
mod encrypted;
mod kv;
mod regress_lost_store;
mod regress_repair_label_kind;
mod regress_repeats;
mod regress_restore_damaged;
mod restore_errors;
#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value as Json;

pub use support::peerlite;

/// Runs the command, asserts exit 0 and that stderr holds only the library's warnings (log
/// lines), returns (stdout, the warnings).
pub fn stdout_warned(cmd: &mut Command) -> (String, String) {
    let out = cmd.assert().success().get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for line in stderr.lines() {
        assert!(line.contains(" WARN "), "only warnings on stderr: {stderr}");
    }
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// Runs the command, asserts exit 0 and an empty stderr, returns stdout.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, "", "nothing on stderr for a successful command");
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the command (which must succeed) and parses its one-line JSON output.
pub fn json_of(cmd: &mut Command) -> Json {
    let out = stdout_of(cmd);
    assert_eq!(out.lines().count(), 1, "one line of JSON: {out}");
    serde_json::from_str(out.trim()).unwrap()
}

/// Runs the command, asserts the exit code, returns (stdout, stderr).
pub fn fails_with(cmd: &mut Command, exit: i32) -> (String, String) {
    let out = cmd.assert().code(exit).get_output().clone();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Asserts a failed operation the documented way: exit 2, stderr `error[CODE]: …` then a
/// `hint: …` line, nothing on stdout. Returns stderr.
pub fn error_code(cmd: &mut Command, code: u32) -> String {
    let (stdout, stderr) = fails_with(cmd, 2);
    assert_eq!(stdout, "", "a failed operation prints nothing on stdout");
    assert_error_shape(&stderr, code);
    stderr
}

/// `error[CODE]: message` on the first line, `hint: …` on the second.
pub fn assert_error_shape(stderr: &str, code: u32) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "error and hint lines: {stderr}");
    assert!(
        lines[0].starts_with(&format!("error[{code}]: ")),
        "expected error[{code}]: {stderr}"
    );
    assert!(
        lines[1].starts_with("hint: ") && lines[1].len() > 10,
        "{stderr}"
    );
}

/// Creates (or fills) table `t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)` with `rows`
/// rows marked `marker` and 200-byte random blobs, through the binary.
pub fn make_db(db: &Path, rows: u32, marker: &str) {
    make_keyed_db(db, None, rows, marker);
}

/// [`make_db`], encrypted with `key` (`--key`) when one is given.
pub fn make_keyed_db(db: &Path, key: Option<&str>, rows: u32, marker: &str) {
    let mut cmd = peerlite();
    if let Some(key) = key {
        cmd.args(["--key", key]);
    }
    cmd.arg("sql")
        .arg(db)
        .arg("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, marker TEXT, pad BLOB)")
        .arg(format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
             INSERT INTO t(marker, pad) SELECT '{marker}', randomblob(200) FROM n"
        ))
        .assert()
        .success();
}

/// Opens a database with rusqlite (keyed when `key` is given).
pub fn open(db: &Path, key: Option<&str>) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).unwrap();
    if let Some(key) = key {
        conn.pragma_update(None, "key", key).unwrap();
    }
    conn
}

/// `(count, distinct markers joined by ',')` of table `t`, read with rusqlite.
pub fn rows_of(db: &Path, key: Option<&str>) -> (i64, String) {
    let conn = open(db, key);
    conn.query_row(
        "SELECT count(*), coalesce((SELECT group_concat(m, ',') FROM \
         (SELECT DISTINCT marker AS m FROM t ORDER BY m)), '') FROM t",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// A digest of table `t`'s whole content (ids, markers, blobs), for "exactly the same data".
pub fn content_of(db: &Path, key: Option<&str>) -> (i64, u64) {
    let conn = open(db, key);
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
        eat(&row
            .get::<_, Option<Vec<u8>>>(2)
            .unwrap()
            .unwrap_or_default());
    }
    (count, hash)
}

/// Moves everything in the WAL into the database file and removes the WAL, so that damage
/// done to the file is what the next open sees.
pub fn checkpoint(db: &Path, key: Option<&str>) {
    let conn = open(db, key);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap();
    drop(conn);
    assert!(!with_suffix(db, "-wal").exists(), "no WAL left");
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut os = path.as_os_str().to_owned();
    os.push(suffix);
    PathBuf::from(os)
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

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Overwrites whole pages (4096 bytes) of a closed database file with random bytes: the
/// pages at the given fractions of the file.
pub fn corrupt_pages(db: &Path, fractions: &[f64], seed: u64) {
    use std::io::{Seek, SeekFrom, Write};
    const PAGE: u64 = 4096;
    let len = std::fs::metadata(db).unwrap().len();
    let pages = len / PAGE;
    assert!(pages > 100, "a multi-page database: {len} bytes");
    let mut rng = Rng(seed);
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    for f in fractions {
        let page = ((pages as f64) * f) as u64;
        let mut buf = vec![0u8; PAGE as usize];
        rng.fill(&mut buf);
        file.seek(SeekFrom::Start(page * PAGE)).unwrap();
        file.write_all(&buf).unwrap();
    }
    file.sync_all().unwrap();
    assert_eq!(std::fs::metadata(db).unwrap().len(), len);
}

/// Names of the files in a directory, sorted (empty when it does not exist).
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

/// The default backup directory of a database: `backup/<file>/` beside it.
pub fn backup_dir(db: &Path) -> PathBuf {
    db.parent()
        .unwrap()
        .join("backup")
        .join(db.file_name().unwrap())
}

/// Names listed by `peerlite --json backups ARGS`.
pub fn listed(args: &[&std::ffi::OsStr]) -> Vec<String> {
    let list = json_of(peerlite().arg("--json").arg("backups").args(args));
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks the shape of an RFC 3339 UTC time with milliseconds: `2026-11-21T08:01:02.123Z`.
pub fn assert_rfc3339(s: &str) {
    let b = s.as_bytes();
    assert_eq!(b.len(), 24, "{s}");
    for (i, c) in b.iter().enumerate() {
        match i {
            4 | 7 => assert_eq!(*c, b'-', "{s}"),
            10 => assert_eq!(*c, b'T', "{s}"),
            13 | 16 => assert_eq!(*c, b':', "{s}"),
            19 => assert_eq!(*c, b'.', "{s}"),
            23 => assert_eq!(*c, b'Z', "{s}"),
            _ => assert!(c.is_ascii_digit(), "{s}"),
        }
    }
}

/// Checks `blake3:<64 hex digits>`.
pub fn assert_checksum(s: &str) {
    let hex = s.strip_prefix("blake3:").unwrap_or_else(|| panic!("{s}"));
    assert_eq!(hex.len(), 64, "{s}");
    assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()), "{s}");
}
