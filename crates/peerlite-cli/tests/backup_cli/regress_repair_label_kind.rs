//! `peerlite repair` (and `restore`) read a store's data label and, for a key-value store, its
//! kind (single version or device collaboration) from the damaged file before rebuilding it.
//! A destroyed header page, a lost or an emptied file reads as nothing, so the store was opened
//! at the defaults — S1, single version. The rebuild then put the backup (labelled S2, or of a
//! device-collaboration store) back, and the open that followed refused it: "the store was
//! created at security level S2; opening it at S1 would lower it" (14800017) or "store … is
//! device_collaboration; it was opened as single_version" (15100002). The command exited 2 with
//! a hint to leave `--level` out (the user had), and never said what it had repaired or
//! salvaged. Found by the end-to-end repair-from-peers test (node_cli::repair_from_peers).
//!
//! The label and the kind of a store whose file cannot be read now come from its newest
//! verified backup: every damage pattern, both commands, every kind of store repair cleanly
//! and keep what they were.

use super::*;

/// What the store is.
#[derive(Debug, Clone, Copy)]
enum Store {
    /// A relational store labelled S2.
    RelationalS2,
    /// A single-version key-value store labelled S2.
    KvS2,
    /// A device-collaboration key-value store (S1).
    KvCollaboration,
}

/// How its file is damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Page 1 overwritten: the header and the schema root are gone.
    HeaderPage,
    /// Cut to 0 bytes.
    Emptied,
    /// Removed (its backups and quarantine stay).
    Lost,
}

/// `peerlite ARGS… TARGET REST…` where TARGET is `DB` or `--kv DIR s`.
fn on(store: Store, root: &Path, args: &[&str], rest: &[&str]) -> Command {
    let mut c = peerlite();
    c.args(args);
    match store {
        Store::RelationalS2 => c.arg(root.join("x.db")),
        Store::KvS2 | Store::KvCollaboration => c.arg("--kv").arg(root.join("kv")).arg("s"),
    };
    c.args(rest);
    c
}

fn file_of(store: Store, root: &Path) -> PathBuf {
    match store {
        Store::RelationalS2 => root.join("x.db"),
        Store::KvS2 | Store::KvCollaboration => root.join("kv").join("s.db"),
    }
}

/// Makes the store with one row (key `k`, value `v`) and its backup `nightly`.
fn make(store: Store, root: &Path) {
    match store {
        Store::RelationalS2 => {
            peerlite()
                .args(["--level", "S2", "sql"])
                .arg(root.join("x.db"))
                .args([
                    "CREATE TABLE t(k TEXT, v TEXT)",
                    "INSERT INTO t VALUES ('k', 'v')",
                ])
                .assert()
                .success();
        }
        Store::KvS2 => {
            peerlite()
                .args(["--level", "S2", "kv"])
                .arg(root.join("kv"))
                .args(["s", "put", "k", "v"])
                .assert()
                .success();
        }
        Store::KvCollaboration => {
            let store = peerlite::KvManager::at(root.join("kv"))
                .unwrap()
                .get_kv_store(
                    "s",
                    peerlite::Options {
                        kv_store_type: peerlite::KvStoreType::DeviceCollaboration,
                        ..peerlite::Options::default()
                    },
                )
                .unwrap();
            store.put("k", "v").unwrap();
            store.close().unwrap();
        }
    }
    on(store, root, &["backup"], &["nightly"])
        .assert()
        .success();
}

fn damage(file: &Path, how: Damage) {
    match how {
        Damage::HeaderPage => {
            let mut bytes = std::fs::read(file).unwrap();
            let page = bytes.len().min(4096);
            bytes[..page].fill(0x5A);
            std::fs::write(file, bytes).unwrap();
        }
        Damage::Emptied => std::fs::write(file, b"").unwrap(),
        Damage::Lost => std::fs::remove_file(file).unwrap(),
    }
}

/// `key` of `peerlite_meta` in `file`, read with rusqlite.
fn meta(file: &Path, key: &str) -> String {
    open(file, None)
        .query_row(
            "SELECT value FROM peerlite_meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap()
}

/// The one row, read through the binary (an ordinary open: label and kind as stored).
fn the_row(store: Store, root: &Path) -> String {
    match store {
        Store::RelationalS2 => stdout_of(
            peerlite()
                .arg("sql")
                .arg(root.join("x.db"))
                .arg("SELECT k || '=' || v FROM t"),
        ),
        Store::KvS2 | Store::KvCollaboration => stdout_of(
            peerlite()
                .arg("kv")
                .arg(root.join("kv"))
                .args(["s", "get", "k"]),
        ),
    }
}

#[test]
fn a_damaged_labelled_or_collaboration_store_is_repaired_as_what_it_was() {
    for store in [Store::RelationalS2, Store::KvS2, Store::KvCollaboration] {
        for how in [Damage::HeaderPage, Damage::Emptied, Damage::Lost] {
            for command in ["repair", "restore"] {
                let what = format!("{store:?}, {how:?}, {command}");
                let tmp = tempfile::tempdir().unwrap();
                let root = tmp.path();
                make(store, root);
                let file = file_of(store, root);
                let before = the_row(store, root);
                assert!(!with_suffix(&file, "-wal").exists(), "{what}: no WAL left");
                damage(&file, how);
                let rest: &[&str] = if command == "restore" {
                    &["nightly"]
                } else {
                    &[]
                };
                let out = on(store, root, &[command], rest).output().unwrap();
                let (stdout, stderr) = (
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                );
                assert_eq!(out.status.code(), Some(0), "{what}: {stdout}{stderr}");
                let said = if command == "repair" {
                    "repaired from nightly\n"
                } else {
                    "restored "
                };
                assert!(stdout.starts_with(said), "{what}: {stdout}");
                assert_eq!(the_row(store, root), before, "{what}");
                let (key, value) = match store {
                    Store::RelationalS2 | Store::KvS2 => ("security_level", "2"),
                    Store::KvCollaboration => ("kv_store_type", "device_collaboration"),
                };
                assert_eq!(meta(&file, key), value, "{what}");
                on(store, root, &["check", "--full"], &[])
                    .assert()
                    .success();
            }
        }
    }
}
