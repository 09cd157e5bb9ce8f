//! Repair from peers (issue 11), end to end with real nodes: device A writes, backs up
//! (`peerlite backup`), writes, edits and deletes more, and syncs all of it with B (a
//! `peerlite serve` on loopback TLS). Then A's database file is damaged — pages in the middle
//! overwritten, the header page destroyed, the file cut short, the file lost — and `peerlite
//! repair` puts the backup back. A's next sync (A pulls first, A pushes first, or B dials a
//! serving A) brings back every change that had reached B: rows written after the backup,
//! the newest values of rows edited after it, and rows deleted after it stay deleted — in
//! both table modes (for a device-collaboration table B's copy of A's rows is the source)
//! and for key-value stores of both kinds. A's writes after the repair — one before that first sync, more after it —
//! reach B too: the repaired database's sequence numbers, which restart from the backup's,
//! hide none of them. And a delete B has purged since stays deleted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use peerlite::{KvManager, KvStoreType, Options};

use crate::common::*;

/// What a device stores, and how the test reads and writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The device-collaboration table `note` (A's rows land in B's table for A).
    Note,
    /// The single-version table `item`, merged by `uuid`.
    Item,
    /// A single-version key-value store.
    KvSingle,
    /// A device-collaboration key-value store.
    KvCollab,
}

impl Kind {
    fn collaboration(self) -> bool {
        matches!(self, Kind::Note | Kind::KvCollab)
    }

    fn kv(self) -> bool {
        matches!(self, Kind::KvSingle | Kind::KvCollab)
    }
}

/// How A's database file is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The middle third of the pages overwritten with garbage.
    MiddlePages,
    /// Page 1 (the header and the schema's root) overwritten with garbage.
    HeaderPage,
    /// The file cut to half its length.
    CutShort,
    /// The file removed (its backups and clock file stay).
    Lost,
}

const DAMAGES: [Damage; 4] = [
    Damage::MiddlePages,
    Damage::HeaderPage,
    Damage::CutShort,
    Damage::Lost,
];

/// A device with the store of `kind`.
struct Node {
    d: Device,
    kind: Kind,
}

/// A key-value store's id (its file is `kv/settings.db`).
const KV_ID: &str = "settings";

impl Node {
    fn new(root: &Path, name: &str, kind: Kind) -> Node {
        let d = Device::new(root, name, "SL1");
        let d = match kind {
            Kind::Note => d.with_notes(&[]),
            Kind::Item => d.with_items(),
            Kind::KvSingle | Kind::KvCollab => {
                let kv_store_type = if kind == Kind::KvCollab {
                    KvStoreType::DeviceCollaboration
                } else {
                    KvStoreType::SingleVersion
                };
                let store = KvManager::at(d.dir.join("kv"))
                    .unwrap()
                    .get_kv_store(
                        KV_ID,
                        Options {
                            kv_store_type,
                            ..Options::default()
                        },
                    )
                    .unwrap();
                store.close().unwrap();
                d
            }
        };
        Node { d, kind }
    }

    /// The database file.
    fn file(&self) -> PathBuf {
        if self.kind.kv() {
            self.d.dir.join("kv").join(format!("{KV_ID}.db"))
        } else {
            self.d.db.clone()
        }
    }

    /// The store as the backup and repair commands name it: `DB` or `--kv DIR ID`.
    fn target(&self) -> Vec<OsString> {
        if self.kind.kv() {
            vec!["--kv".into(), self.d.dir.join("kv").into(), KV_ID.into()]
        } else {
            vec![self.d.db.clone().into()]
        }
    }

    /// `peerlite COMMAND TARGET ARGS…`: (exit code, stdout, stderr).
    fn cmd(&self, command: &str, args: &[&str]) -> (i32, String, String) {
        run(peerlite().arg(command).args(self.target()).args(args))
    }

    /// `peerlite sync --home H TARGET MODE`, which must be ok with `peer`.
    fn sync_ok(&self, mode: &str, peer: &Node) {
        let (code, out, err) = run(peerlite()
            .args(["sync", "--home"])
            .arg(&self.d.home)
            .args(self.target())
            .arg(mode));
        assert_eq!(
            (code, out.as_str()),
            (0, format!("{} ok\n", peer.d.id).as_str()),
            "{:?} sync {mode}: {err}",
            self.kind
        );
    }

    /// Serves the store (B's role), trusting `client`, which trusts it back at its address.
    fn serve_for(&self, client: &Node) -> Served {
        self.d.trusts(&client.d, "SL1", None);
        let served = if self.kind.kv() {
            let dir = self.d.dir.join("kv");
            self.d.serve(&["--kv", dir.to_str().unwrap(), KV_ID])
        } else {
            self.d.serve(&[])
        };
        client.d.trusts(&self.d, "SL1", Some(&served.addr));
        served
    }

    /// Writes `value` under `key` (an insert, or an update of the row there).
    fn put(&self, key: u32, value: &str) {
        match self.kind {
            Kind::Note => sql(
                &self.d.db,
                &[&format!(
                    "INSERT INTO note(id, text) VALUES ({key}, '{value}') ON CONFLICT(id) DO UPDATE SET text = excluded.text"
                )],
            ),
            Kind::Item => sql(
                &self.d.db,
                &[&format!(
                    "INSERT INTO item(uuid, title) VALUES ('u{key}', '{value}') ON CONFLICT(uuid) DO UPDATE SET title = excluded.title"
                )],
            ),
            Kind::KvSingle | Kind::KvCollab => {
                stdout_of(
                    peerlite()
                        .arg("kv")
                        .arg(self.d.dir.join("kv"))
                        .arg(KV_ID)
                        .args(["put", &format!("k{key}"), value]),
                );
            }
        }
    }

    fn delete(&self, key: u32) {
        match self.kind {
            Kind::Note => sql(&self.d.db, &[&format!("DELETE FROM note WHERE id = {key}")]),
            Kind::Item => sql(
                &self.d.db,
                &[&format!("DELETE FROM item WHERE uuid = 'u{key}'")],
            ),
            Kind::KvSingle | Kind::KvCollab => {
                stdout_of(
                    peerlite()
                        .arg("kv")
                        .arg(self.d.dir.join("kv"))
                        .arg(KV_ID)
                        .args(["delete", &format!("k{key}")]),
                );
            }
        }
    }

    /// The rows of the store's own table (every row of a single-version one; this device's
    /// rows of a collaboration one), as `key=value` in key order.
    fn own(&self) -> Vec<String> {
        let select = match self.kind {
            Kind::Note => "SELECT id, text FROM note ORDER BY id".to_owned(),
            Kind::Item => "SELECT uuid, title FROM item ORDER BY uuid".to_owned(),
            Kind::KvSingle | Kind::KvCollab => {
                "SELECT key, value FROM peerlite_kv ORDER BY key".to_owned()
            }
        };
        shell_rows(&self.file(), &select)
    }

    /// The rows this device holds of `other`'s: its table for `other` in a collaboration
    /// store, the shared table in a single-version one.
    fn of(&self, other: &Node) -> Vec<String> {
        if !self.kind.collaboration() {
            return self.own();
        }
        let logical = if self.kind.kv() {
            "peerlite_kv"
        } else {
            "note"
        };
        let (key, value) = if self.kind.kv() {
            ("key", "value")
        } else {
            ("id", "text")
        };
        let table = stdout_of(peerlite().arg("table-name").arg(self.file()).args([
            "--device",
            &other.d.id,
            "--table",
            logical,
        ]));
        let table = table.trim();
        let exists = shell_rows(
            &self.file(),
            &format!("SELECT count(*) FROM sqlite_schema WHERE name = '{table}'"),
        );
        if exists != ["1"] {
            return Vec::new();
        }
        shell_rows(
            &self.file(),
            &format!("SELECT {key}, {value} FROM \"{table}\" ORDER BY {key}"),
        )
    }
}

/// Rows of `select` on `file` through the `sqlite3` shell (it reads any table, peerlite's
/// own included, and never writes): `a=b` per row.
fn shell_rows(file: &Path, select: &str) -> Vec<String> {
    let out = std::process::Command::new("sqlite3")
        .arg("-readonly")
        .args(["-separator", "="])
        .arg(file)
        .arg(select)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqlite3 {select}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Damages `file` (no process has it open, its WAL was checkpointed away).
fn damage(file: &Path, how: Damage) {
    let mut bytes = std::fs::read(file).unwrap();
    let page = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        n => usize::from(n),
    };
    let pages = bytes.len() / page;
    assert!(pages >= 6, "{} has only {pages} pages", file.display());
    match how {
        Damage::MiddlePages => {
            for b in &mut bytes[pages / 3 * page..pages * 2 / 3 * page] {
                *b = 0xA5;
            }
            std::fs::write(file, bytes).unwrap();
        }
        Damage::HeaderPage => {
            for b in &mut bytes[..page] {
                *b = 0x5A;
            }
            std::fs::write(file, bytes).unwrap();
        }
        Damage::CutShort => {
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len((pages / 2 * page) as u64).unwrap();
        }
        Damage::Lost => std::fs::remove_file(file).unwrap(),
    }
}

/// The sides' contents at one moment: A's own rows, B's copy of them, B's own rows, A's copy
/// of those.
#[derive(Debug, PartialEq)]
struct Contents {
    a_own: Vec<String>,
    a_on_b: Vec<String>,
    b_own: Vec<String>,
    b_on_a: Vec<String>,
}

fn contents(a: &Node, b: &Node) -> Contents {
    Contents {
        a_own: a.own(),
        a_on_b: b.of(a),
        b_own: b.own(),
        b_on_a: a.of(b),
    }
}

fn kv_pair(key: u32, value: &str, kind: Kind) -> String {
    match kind {
        Kind::Note => format!("{key}={value}"),
        Kind::Item => format!("u{key}={value}"),
        Kind::KvSingle | Kind::KvCollab => format!("k{key}={value}"),
    }
}

/// Where a `key=value` row sorts in its store: by number in `note` (integer keys), by text
/// elsewhere.
fn sort_key(row: &str, kind: Kind) -> (u32, String) {
    let key = row.split('=').next().unwrap_or_default();
    match kind {
        Kind::Note => (key.parse().unwrap(), String::new()),
        _ => (0, key.to_owned()),
    }
}

/// How the devices meet after the repair.
#[derive(Debug, Clone, Copy)]
enum Meeting {
    /// A dials B (serving): pull, then push.
    APullsFirst,
    /// A dials B (serving): push, then pull.
    APushesFirst,
    /// B's serve was stopped before the damage; A serves and B dials it: B pushes, then
    /// pulls (A only answers).
    BDialsA,
}

const MEETINGS: [Meeting; 3] = [
    Meeting::APullsFirst,
    Meeting::APushesFirst,
    Meeting::BDialsA,
];

/// Sorts `key=value` rows as the store lists them.
fn sorted(mut rows: Vec<String>, kind: Kind) -> Vec<String> {
    rows.sort_by_key(|row| sort_key(row, kind));
    rows
}

/// One run of the story: `kind`, damaged by `how`, the devices meeting after the repair as
/// `meeting` says.
fn repair_brings_back_what_reached_the_peer(kind: Kind, how: Damage, meeting: Meeting) {
    let what = format!("{kind:?}, {how:?}, {meeting:?}");
    let root = tempfile::tempdir().unwrap();
    let a = Node::new(root.path(), "a", kind);
    let b = Node::new(root.path(), "b", kind);
    let b_serves = b.serve_for(&a);
    let sync_both = |first: &str, second: &str| {
        a.sync_ok(first, &b);
        a.sync_ok(second, &b);
    };

    // Before the backup: rows 1..=6 of A's and one of B's, synced.
    for key in 1..=6 {
        a.put(key, "v1");
    }
    b.put(101, "b-before");
    sync_both("--push", "--pull");
    let (code, out, err) = a.cmd("backup", &["nightly"]);
    assert_eq!(code, 0, "{what}: {out}{err}");

    // After the backup, every kind of change, all of it synced: inserts, an edit, a delete,
    // a row inserted and deleted again; and on B a row of its own (and, where the table is
    // shared, an edit and a delete of A's rows).
    a.put(7, "after");
    a.put(8, "after");
    a.put(2, "edited");
    a.delete(3);
    a.put(9, "short-lived");
    a.delete(9);
    b.put(102, "b-after");
    if !kind.collaboration() {
        b.put(4, "edited-on-b");
        b.delete(5);
    }
    sync_both("--push", "--pull");
    let synced = contents(&a, &b);
    assert_eq!(synced.a_own, synced.a_on_b, "{what}: B holds A's rows");
    assert_eq!(synced.b_own, synced.b_on_a, "{what}: A holds B's rows");
    let mut expected = vec![
        kv_pair(1, "v1", kind),
        kv_pair(2, "edited", kind),
        kv_pair(
            4,
            if kind.collaboration() {
                "v1"
            } else {
                "edited-on-b"
            },
            kind,
        ),
    ];
    if kind.collaboration() {
        expected.push(kv_pair(5, "v1", kind));
    }
    expected.extend([
        kv_pair(6, "v1", kind),
        kv_pair(7, "after", kind),
        kv_pair(8, "after", kind),
    ]);
    if !kind.collaboration() {
        expected.extend([
            kv_pair(101, "b-before", kind),
            kv_pair(102, "b-after", kind),
        ]);
    }
    assert_eq!(synced.a_own, sorted(expected.clone(), kind), "{what}");
    let b_serves = match meeting {
        Meeting::BDialsA => {
            assert!(b_serves.stop().success(), "{what}");
            None
        }
        Meeting::APullsFirst | Meeting::APushesFirst => Some(b_serves),
    };

    // A's file is damaged; the check sees it; the repair puts the backup back.
    // No process has the file open, so its last close moved the WAL into it: the damage
    // hits every committed page.
    let mut wal = a.file().into_os_string();
    wal.push("-wal");
    assert!(
        std::fs::metadata(PathBuf::from(&wal)).map_or(true, |m| m.len() == 0),
        "{what}: the WAL holds transactions"
    );
    damage(&a.file(), how);
    let (code, out, err) = a.cmd("check", &["--full"]);
    assert_eq!(code, 3, "{what}: check after the damage: {out}{err}");
    let (code, out, err) = a.cmd("repair", &[]);
    assert_eq!(code, 0, "{what}: {out}{err}");
    assert!(
        out.starts_with("repaired from nightly"),
        "{what}: {out}{err}"
    );
    let (code, out, err) = a.cmd("check", &["--full"]);
    assert_eq!((code, out.as_str()), (0, "ok\n"), "{what}: {err}");
    let mut at_backup: Vec<String> = (1..=6).map(|k| kv_pair(k, "v1", kind)).collect();
    if !kind.collaboration() {
        at_backup.push(kv_pair(101, "b-before", kind));
    }
    assert_eq!(
        a.own(),
        sorted(at_backup, kind),
        "{what}: the backup's state is back"
    );

    // A writes before it meets B again: its numbering restarts from the backup's, below what
    // B has seen of A, and the write must still travel.
    a.put(11, "fresh");
    expected.push(kv_pair(11, "fresh", kind));
    let expected = sorted(expected, kind);

    // The next sync brings back everything that had reached B, and takes nothing stale to B.
    let a_serves = match meeting {
        Meeting::APullsFirst => {
            sync_both("--pull", "--push");
            None
        }
        Meeting::APushesFirst => {
            sync_both("--push", "--pull");
            None
        }
        Meeting::BDialsA => {
            // A answers only: it forgets B's address, so its serve never dials B.
            a.d.distrusts(&b.d);
            a.d.trusts(&b.d, "SL1", None);
            let served = if kind.kv() {
                let dir = a.d.dir.join("kv");
                a.d.serve(&["--kv", dir.to_str().unwrap(), KV_ID])
            } else {
                a.d.serve(&[])
            };
            b.d.distrusts(&a.d);
            b.d.trusts(&a.d, "SL1", Some(&served.addr));
            b.sync_ok("--push", &a);
            b.sync_ok("--pull", &a);
            Some(served)
        }
    };
    let healed = contents(&a, &b);
    assert_eq!(healed.a_own, expected, "{what}: A's rows after the repair");
    assert_eq!(healed.a_on_b, expected, "{what}: B's copy of A's rows");
    assert_eq!(healed.b_own, healed.b_on_a, "{what}: B's rows on A");
    assert_eq!(healed.b_own, synced.b_own_with(&expected, kind), "{what}");

    // A's writes after the repair reach B: an insert, an edit, a delete.
    a.put(10, "new");
    a.put(1, "renewed");
    a.delete(6);
    let to_b = |mode: &str| match meeting {
        Meeting::BDialsA => b.sync_ok(if mode == "--push" { "--pull" } else { "--push" }, &a),
        Meeting::APullsFirst | Meeting::APushesFirst => a.sync_ok(mode, &b),
    };
    to_b("--push");
    let later = contents(&a, &b);
    assert_eq!(later.a_own, later.a_on_b, "{what}: B has A's new writes");
    assert!(later.a_on_b.contains(&kv_pair(10, "new", kind)), "{what}");
    assert!(
        later.a_on_b.contains(&kv_pair(1, "renewed", kind)),
        "{what}"
    );
    assert!(!later.a_on_b.contains(&kv_pair(6, "v1", kind)), "{what}");
    // And the other direction changes nothing more on either side.
    to_b("--pull");
    assert_eq!(contents(&a, &b), later, "{what}");
    for served in [b_serves, a_serves].into_iter().flatten() {
        assert!(served.stop().success(), "{what}");
    }
}

impl Contents {
    /// B's own rows once A's rows are `a_rows`: in a shared (single-version) table they are
    /// one and the same; in a collaboration store B's rows are untouched by A's repair.
    fn b_own_with(&self, a_rows: &[String], kind: Kind) -> Vec<String> {
        if kind.collaboration() {
            self.b_own.clone()
        } else {
            a_rows.to_vec()
        }
    }
}

fn every_damage(kind: Kind) {
    for how in DAMAGES {
        for meeting in MEETINGS {
            repair_brings_back_what_reached_the_peer(kind, how, meeting);
        }
    }
}

#[test]
fn a_repaired_collaboration_table_gets_back_every_row_that_reached_a_peer() {
    every_damage(Kind::Note);
}

#[test]
fn a_repaired_single_version_table_gets_back_every_row_that_reached_a_peer() {
    every_damage(Kind::Item);
}

#[test]
fn a_repaired_single_version_kv_store_gets_back_every_entry_that_reached_a_peer() {
    every_damage(Kind::KvSingle);
}

#[test]
fn a_repaired_collaboration_kv_store_gets_back_every_entry_that_reached_a_peer() {
    every_damage(Kind::KvCollab);
}

/// A repaired device's next sync must not bring back a row whose delete reached its peer and
/// was purged there since (the backup predates the delete; the peer no longer remembers it):
/// the peer refuses A as behind its purge (17040011), whether A pushes or pulls first, and a
/// pull with `--on-reset recover` then makes both sides agree, the row deleted. (A's push was
/// taken: the peer judged A by what A had acknowledged before the damage, and the row came
/// back everywhere; the reset then replayed it too. See sync_core
/// `regress_repaired_behind_purge`.)
fn a_purged_delete_stays_deleted(kind: Kind, push_first: bool) {
    let what = format!("{kind:?}, push first {push_first}");
    let root = tempfile::tempdir().unwrap();
    let a = Node::new(root.path(), "a", kind);
    let b = Node::new(root.path(), "b", kind);
    let served = b.serve_for(&a);
    for key in 1..=6 {
        a.put(key, "v1");
    }
    a.sync_ok("--push", &b);
    a.sync_ok("--pull", &b);
    let (code, out, err) = a.cmd("backup", &["nightly"]);
    assert_eq!(code, 0, "{what}: {out}{err}");
    a.delete(3);
    a.put(7, "after");
    a.sync_ok("--push", &b);
    a.sync_ok("--pull", &b);
    let before = contents(&a, &b);
    assert!(!before.a_on_b.contains(&kv_pair(3, "v1", kind)), "{what}");
    let purge = run(peerlite()
        .args(["purge", "--home"])
        .arg(&b.d.home)
        .args(b.target())
        .args(["--older-than", "0s"]));
    assert_eq!(purge.0, 0, "{what}: {purge:?}");
    damage(&a.file(), Damage::HeaderPage);
    let (code, out, err) = a.cmd("repair", &[]);
    assert_eq!(code, 0, "{what}: {out}{err}");
    let modes = if push_first {
        ["--push", "--pull"]
    } else {
        ["--pull", "--push"]
    };
    for mode in modes {
        let (code, out, err) = run(peerlite()
            .args(["sync", "--home"])
            .arg(&a.d.home)
            .args(a.target())
            .arg(mode));
        assert!(
            code == 0 || out.contains("error[17040011]"),
            "{what}: sync {mode}: {out}{err}"
        );
        assert!(
            !b.of(&a).contains(&kv_pair(3, "v1", kind)),
            "{what}: sync {mode} brought the purged row back on B"
        );
    }
    let (code, out, err) = run(peerlite()
        .args(["sync", "--home"])
        .arg(&a.d.home)
        .args(a.target())
        .args(["--pull", "--on-reset", "recover"]));
    assert_eq!(code, 0, "{what}: {out}{err}");
    a.sync_ok("--push", &b);
    assert_eq!(contents(&a, &b), before, "{what}");
    assert!(served.stop().success(), "{what}");
}

#[test]
fn a_delete_the_peer_purged_stays_deleted_after_a_repair() {
    for kind in [Kind::Item, Kind::Note] {
        for push_first in [true, false] {
            a_purged_delete_stays_deleted(kind, push_first);
        }
    }
}
