//! Small defects an outside tester found in the network commands (issue 10, F16): each test
//! tells its story and checks the contract the command keeps.

use crate::common::*;

/// `peerlite sync … --device X --device X` ran two sessions with X and printed two `X ok`
/// lines, although the contract is one line (one JSON object) per device. A device named
/// twice is synced once and reported once, in text and in JSON, whichever the direction.
#[test]
fn a_device_named_twice_is_synced_once_and_reported_once() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('once')"]);
    for direction in ["--push", "--pull"] {
        let out = a.sync_ok(&[direction, "--device", &b.id, "--device", &b.id]);
        assert_eq!(out, format!("{} ok\n", b.id), "{direction}");
        let out = a.sync_ok(&[
            direction, "--device", &b.id, "--device", &b.id, "--table", "note", "--json",
        ]);
        let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{direction}: {out}");
    }
    assert!(served.stop().success());
}

/// A pull from a device whose store was damaged printed `error[14800011] failed: database
/// corrupted: "cor2/c.db": database disk image is malformed`: the serving device's own path
/// travelled to the peer, where it read like one of the user's files, and the hint ("see the
/// reason") did not say what to do. The peer is now told without paths that the other
/// device's copy is damaged, and the hint says to run `peerlite repair` there — for a sync
/// and for a remote query alike. The serving device's log keeps its path.
#[test]
fn a_damaged_store_on_the_serving_device_is_reported_without_its_path() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b-private-dir", "SL1").with_notes(&[]);
    sql(
        &b.db,
        &[
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3000) INSERT INTO note(text) SELECT printf('%0200d', x) FROM c",
        ],
    );
    peerlite().arg("checkpoint").arg(&b.db).assert().success();
    // Pages in the middle of the file (the note table's) overwritten; the header is intact,
    // so serve opens the store and the damage shows when the session reads it.
    let mut bytes = std::fs::read(&b.db).unwrap();
    assert!(bytes.len() > 4096 * 60, "{}", bytes.len());
    bytes[4096 * 40..4096 * 60].fill(0xff);
    std::fs::write(&b.db, bytes).unwrap();
    let served = serve_for(&a, &b, "SL1", "SL1");

    let (code, out, err) = a.sync(&["--pull"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.starts_with(&format!("{} error[14800011] ", b.id)),
        "{out}"
    );
    assert!(out.contains("other device's copy"), "{out}");
    let (code, qout, qerr) = run(peerlite()
        .args(["remote-query", "--home"])
        .arg(&a.home)
        .arg(&a.db)
        .args(["--device", &b.id, "--table", "note"]));
    assert_eq!((code, qout.as_str()), (2, ""), "{qerr}");
    assert!(qerr.starts_with("error[14800011]"), "{qerr}");
    for text in [&out, &err, &qerr] {
        assert!(!text.contains("b-private-dir"), "{text}");
        assert!(!text.contains("notes.db"), "{text}");
    }
    for hint in [&err, &qerr] {
        assert!(
            hint.contains("hint: ") && hint.contains("`peerlite repair DB`"),
            "{hint}"
        );
    }
    wait_until("b to log the damage with its path", || {
        served.logged().contains("b-private-dir")
    });
    drop(served);
}

/// The `--flag`s a hint line names.
fn flags_in(hint: &str) -> Vec<String> {
    hint.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_owned)
        .collect()
}

/// `device init --name <5000 characters>` printed the whole name back (a 10 KB error line)
/// under a hint to check `--addr HOST:PORT` and `--level` (device init has no `--addr`), and
/// `serve --db x1/dup.db --db x2/dup.db` (two files, one store name) got the same unrelated
/// hint. Every argument refusal echoes at most an excerpt of what was given, and its hint
/// names only flags of the command that refused.
#[test]
fn argument_refusals_are_short_and_name_only_the_commands_flags() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    let long = "é".repeat(5000);
    let long_addr = format!("{}:80", "h".repeat(5000));
    let (x1, x2) = (root.path().join("x1"), root.path().join("x2"));
    for dir in [&x1, &x2] {
        std::fs::create_dir_all(dir).unwrap();
        sql(&dir.join("dup.db"), &["CREATE TABLE t(x)"]);
    }
    let home = |cmd: &mut assert_cmd::Command, h: &std::path::Path| {
        cmd.arg("--home").arg(h);
    };
    // (what is run, the flags that command has)
    let mut cases: Vec<(assert_cmd::Command, &[&str])> = Vec::new();
    let mut init = peerlite();
    init.args(["device", "init", "--name", &long]);
    home(&mut init, &root.path().join("new-home"));
    cases.push((init, &["--home", "--name", "--level"]));
    for (flag, value) in [("--name", long.as_str()), ("--addr", long_addr.as_str())] {
        let mut add = peerlite();
        add.args(["trust", "add", &b.id, flag, value]);
        home(&mut add, &a.home);
        cases.push((add, &["--home", "--name", "--addr", "--level"]));
    }
    let mut dup = peerlite();
    dup.args(["serve", "--no-mdns", "--listen", "127.0.0.1:0", "--db"])
        .arg(x1.join("dup.db"))
        .arg("--db")
        .arg(x2.join("dup.db"));
    home(&mut dup, &a.home);
    cases.push((
        dup,
        &["--home", "--db", "--kv", "--listen", "--no-mdns", "--key"],
    ));
    for (mut cmd, flags) in cases {
        let (code, _, err) = run(&mut cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(err.starts_with("error[17060016]"), "{err}");
        assert!(err.len() < 600, "{} bytes: {err}", err.len());
        let hint = err.lines().find(|l| l.starts_with("hint: ")).unwrap();
        let named = flags_in(hint);
        assert!(!named.is_empty() || hint.contains("`peerlite"), "{hint}");
        for flag in named {
            assert!(flags.contains(&flag.as_str()), "{cmd:?}: {hint}");
        }
    }
}

/// `trust add --name` refuses control characters but accepts a right-to-left override
/// (U+202E), and `trust list` printed it raw: the terminal reversed the rest of the line
/// (level, addresses). The text table escapes what would act on the terminal, as every other
/// table does (`\u{202e}`); `--json` keeps the name as it is.
#[test]
fn trust_list_escapes_bidi_overrides_in_names() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1");
    let b = Device::new(root.path(), "b", "SL1");
    let c = Device::new(root.path(), "c", "SL1");
    for (other, name) in [(&b, "x\u{202e}y"), (&c, "p\u{2067}q\u{2069}r")] {
        peerlite()
            .args(["trust", "add", "--home"])
            .arg(&a.home)
            .args([&other.id, "--name", name, "--addr", "127.0.0.1:9"])
            .assert()
            .success();
    }
    let out = stdout_of(peerlite().args(["trust", "list", "--home"]).arg(&a.home));
    for c in ['\u{202e}', '\u{2067}', '\u{2069}'] {
        assert!(!out.contains(c), "{out:?}");
    }
    assert!(out.contains("x\\u{202e}y"), "{out}");
    assert!(out.contains("p\\u{2067}q\\u{2069}r"), "{out}");
    let json = json_of(
        peerlite()
            .args(["--json", "trust", "list", "--home"])
            .arg(&a.home),
    );
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"x\u{202e}y"), "{json}");
}

/// `--eq COL=007` (and `+5`, `-0`) was read as the integer 7, so a TEXT column's zip codes
/// and phone numbers could never be selected: `remote-query` answered nothing and a filtered
/// `sync` silently synced nothing. Only an integer written as one (`7`, `-7`) is an integer;
/// an INTEGER column still matches `007` (SQLite converts the text compared with it).
#[test]
fn eq_values_are_integers_only_when_written_as_integers() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    sql(
        &b.db,
        &[
            "INSERT INTO note(id, text, shop) VALUES (7, 'seven', '7'), (8, 'zip', '007'), (9, 'plus', '+5'), (10, 'minus', '-0'), (11, 'zero', '0')",
        ],
    );
    let served = serve_for(&a, &b, "SL1", "SL1");
    let query = |eq: &str| {
        let out = json_of(
            peerlite()
                .args(["--json", "remote-query", "--home"])
                .arg(&a.home)
                .arg(&a.db)
                .args(["--device", &b.id, "--table", "note", "--columns", "text"])
                .args(["--eq", eq]),
        );
        let texts: Vec<String> = out["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap().to_owned())
            .collect();
        texts
    };
    assert_eq!(query("shop=007"), ["zip"]);
    assert_eq!(query("shop=+5"), ["plus"]);
    assert_eq!(query("shop=-0"), ["minus"]);
    assert_eq!(query("shop=0"), ["zero"]);
    assert_eq!(query("id=7"), ["seven"]);
    assert_eq!(query("id=007"), ["seven"]);
    // A filtered sync selects the same rows.
    let out = a.sync_ok(&["--pull", "--table", "note", "--eq", "shop=007", "--json"]);
    let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["received"], 1, "{out}");
    let table = a.table_of(&b);
    assert_eq!(
        a.rows(&format!("SELECT text FROM {table}")),
        vec![serde_json::json!(["zip"])]
    );
    assert!(served.stop().success());
}

/// A push whose row broke a UNIQUE column on the peer: the peer recorded the conflict
/// (`serve -v`: `conflicts=1`), but the pusher's `sync --push --json` said `"conflicts":0`.
/// The `conflicts` field counts the session's conflicts wherever they were recorded — on the
/// peer for a push, here for a pull — and a note says where `peerlite conflicts DB` lists
/// them.
#[test]
fn conflicts_a_push_causes_on_the_peer_are_reported_to_the_pusher() {
    let root = tempfile::tempdir().unwrap();
    let create = "CREATE TABLE item(id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, code TEXT UNIQUE)";
    let schema = r#"{"dbSchema":[{"version":1,"bundleName":"com.example.peerlite","dbName":"notes","tables":[{"tableName":"item",
      "deviceSyncFields":["uuid","code"],
      "fields":[{"columnName":"uuid","type":"Text","primaryKey":true,"notNull":true},
                {"columnName":"code","type":"Text"}]}]}]}"#;
    let device = |name: &str| {
        let d = Device::new(root.path(), name, "SL1");
        sql(&d.db, &[create]);
        let file = d.dir.join("sync_schema.json");
        std::fs::write(&file, schema).unwrap();
        peerlite()
            .arg("distribute")
            .arg(&d.db)
            .arg("item")
            .args(["--mode", "single-version", "--schema"])
            .arg(&file)
            .assert()
            .success();
        d
    };
    let (a, b) = (device("a"), device("b"));
    sql(&a.db, &["INSERT INTO item(uuid, code) VALUES ('u1', 'X')"]);
    sql(&b.db, &["INSERT INTO item(uuid, code) VALUES ('u2', 'X')"]);
    let served = serve_for(&a, &b, "SL1", "SL1");
    let (code, out, err) = a.sync(&["--push", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["status"], "ok", "{out}");
    assert_eq!(list[0]["conflicts"], 1, "{out}");
    assert!(
        err.contains("note: ") && err.contains("`peerlite conflicts DB`"),
        "{err}"
    );
    let listed = json_of(peerlite().args(["--json", "conflicts"]).arg(&b.db));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    // The other way: b's row reaches a and conflicts there; a's pull counts it too.
    let (code, out, err) = a.sync(&["--pull", "--json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["conflicts"], 1, "{out}");
    assert!(err.contains("recorded as conflicts here"), "{err}");
    assert!(served.stop().success());
}

/// `trust add` refuses this device's own id, but a hand-edited trust.json listing it was
/// accepted by `trust list` and `serve`, and `sync --device <own id>` then ran a session with
/// itself and printed `ok`. The trust store listing the own id is damaged (17060017), and
/// `sync`, `remote-query` and `reset` refuse the own id (17060016) before anything runs.
#[test]
fn a_device_never_pairs_or_syncs_with_itself() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1");
    a.trusts(&b, "SL1", Some("127.0.0.1:9"));
    let refused = |args: &[&str], code: &str| {
        let (exit, out, err) = run(peerlite().args(args).arg("--home").arg(&a.home));
        assert_eq!((exit, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("error[{code}]")),
            "{args:?}: {err}"
        );
        assert!(err.contains(&a.id) && err.contains("hint: "), "{err}");
    };
    let db = a.db.to_str().unwrap();
    refused(&["sync", db, "--push", "--device", &a.id], "17060016");
    refused(
        &["sync", db, "--pull", "--device", &b.id, "--device", &a.id],
        "17060016",
    );
    refused(
        &["remote-query", db, "--device", &a.id, "--table", "note"],
        "17060016",
    );
    refused(
        &["reset", db, "--device", &a.id, "--mode", "discard"],
        "17060016",
    );
    // The own id written into trust.json by hand.
    let file = a.home.join("trust.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(&b.id, &a.id)).unwrap();
    refused(&["trust", "list"], "17060017");
    refused(&["sync", db, "--push"], "17060017");
    refused(
        &["serve", "--no-mdns", "--listen", "127.0.0.1:0", "--db", db],
        "17060017",
    );
}

/// `remote-query --table BIG` answered `17040001 table BIG is not distributed` for the
/// distributed table `big`, while `--columns ID,K` worked: SQLite treats table and column
/// names alike, case-insensitively. `remote-query` and `sync --table` take a table name in
/// any case (and `--table note --table NOTE` is one table).
#[test]
fn table_names_are_case_insensitive() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    sql(
        &b.db,
        &["INSERT INTO note(text, shop) VALUES ('milk', 'north'), ('tea', 'south')"],
    );
    let served = serve_for(&a, &b, "SL1", "SL1");
    for table in ["NOTE", "Note"] {
        let out = json_of(
            peerlite()
                .args(["--json", "remote-query", "--home"])
                .arg(&a.home)
                .arg(&a.db)
                .args(["--device", &b.id, "--table", table, "--columns", "TEXT"])
                .args(["--eq", "SHOP=north"]),
        );
        assert_eq!(out["rows"], serde_json::json!([["milk"]]), "{table}: {out}");
    }
    let out = a.sync_ok(&[
        "--pull",
        "--table",
        "NOTE",
        "--table",
        "note",
        "--eq",
        "Shop=north",
        "--json",
    ]);
    let list: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(list[0]["received"], 1, "{out}");
    let table = a.table_of(&b);
    assert_eq!(
        a.rows(&format!("SELECT text FROM {table}")),
        vec![serde_json::json!(["milk"])]
    );
    assert!(served.stop().success());
}
