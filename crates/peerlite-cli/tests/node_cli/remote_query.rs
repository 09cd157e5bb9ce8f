//! `peerlite remote-query` runs on the peer: it returns the peer's rows (text like `peerlite
//! sql`, or `--json`), and the peer refuses a table that is not distributed and a result over
//! the 4 MiB cap, each with its code.

use serde_json::json;

use crate::common::*;

fn remote_query(a: &Device, b: &Device, args: &[&str]) -> (i32, String, String) {
    run(peerlite()
        .args(["remote-query", "--home"])
        .arg(&a.home)
        .arg(&a.db)
        .args(["--device", &b.id])
        .args(args))
}

#[test]
fn remote_query_answers_with_the_peers_rows_and_refuses_what_it_must() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    sql(
        &b.db,
        &[
            "INSERT INTO note(text, shop) VALUES ('milk', 'north'), ('eggs', 'south'), ('tea', 'north')",
            "CREATE TABLE private(x TEXT)",
            "INSERT INTO private VALUES ('pin 1234')",
            "CREATE TABLE big(id INTEGER PRIMARY KEY, blob BLOB)",
        ],
    );
    let served = serve_for(&a, &b, "SL1", "SL1");

    let (code, out, err) = remote_query(
        &a,
        &b,
        &[
            "--table",
            "note",
            "--columns",
            "text,shop",
            "--eq",
            "shop=north",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "text | shop\n-----+------\nmilk | north\ntea  | north\n"
    );
    let (code, out, _) = remote_query(&a, &b, &["--table", "note", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rows["columns"], json!(["id", "text", "shop"]));
    assert_eq!(rows["rows"].as_array().unwrap().len(), 3);

    let (code, out, err) = remote_query(&a, &b, &["--table", "private"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("error[17040001]"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("peerlite distribute"),
        "{err}"
    );
    assert!(!err.contains("1234"));
    // The serving device logs every query, a refusal with its code and reason (the asker's
    // hint sends its user there; it logged nothing before).
    wait_until("serve to log the refusal", || {
        let log = served.logged();
        log.contains("remote query refused") && log.contains("17040001") && log.contains("private")
    });
    assert!(served.logged().contains("remote query answered"));

    // Over the cap: 5 MiB in a distributed table.
    sql(
        &b.db,
        &[
            "INSERT INTO note(text) SELECT printf('%.*c', 65536, 'x') FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80) SELECT i FROM n)",
        ],
    );
    let (code, out, err) = remote_query(&a, &b, &["--table", "note"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("error[17040010]"), "{err}");
    assert!(err.contains("--eq") || err.contains("--columns"), "{err}");
    // Narrowed, it answers again.
    let (code, out, _) = remote_query(
        &a,
        &b,
        &["--table", "note", "--columns", "shop", "--eq", "shop=south"],
    );
    assert_eq!((code, out.as_str()), (0, "shop\n-----\nsouth\n"));
    assert!(served.stop().success());
}

/// Adversary round 2, finding 14: `remote-query` handed S3 rows to a device that is SL1 by its
/// own `device.json`, because the serving device had recorded it (too generously) at SL4 —
/// while the same device's `sync` of that store is refused. The answer now names the data's
/// label and the asking device refuses rows above what its own level admits, with the
/// security-level code (17040006) and a hint about its own level; a device whose own level
/// admits them gets them.
#[test]
fn a_device_never_shows_rows_above_its_own_level() {
    let root = tempfile::tempdir().unwrap();
    let low = Device::new(root.path(), "low", "SL1").with_notes(&[]);
    let high = Device::new(root.path(), "high", "SL3").with_notes(&["--level", "S3"]);
    let b = Device::new(root.path(), "b", "SL3").with_notes(&["--level", "S3"]);
    sql(&b.db, &["INSERT INTO note(text) VALUES ('pulse 88')"]);
    b.trusts(&low, "SL4", None);
    b.trusts(&high, "SL4", None);
    let served = b.serve(&[]);
    low.trusts(&b, "SL4", Some(&served.addr));
    high.trusts(&b, "SL4", Some(&served.addr));
    for args in [&["--table", "note"][..], &["--table", "note", "--json"][..]] {
        let (code, out, err) = remote_query(&low, &b, args);
        assert_eq!((code, out.as_str()), (2, ""), "{err}");
        assert!(err.starts_with("error[17040006]"), "{err}");
        assert!(err.contains("S3") && err.contains("SL1"), "{err}");
        assert!(!err.contains("pulse"), "{err}");
        assert!(
            err.contains("hint: ") && err.contains("peerlite device"),
            "{err}"
        );
    }
    let (code, out, err) = remote_query(&high, &b, &["--table", "note", "--columns", "text"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pulse 88"), "{out}");
    assert!(served.stop().success());
}
