//! Adversary round 2, finding 8, end to end: a store put back from a file copy (`cp` of the
//! database after `peerlite checkpoint`, or the whole directory with its `.clock` file: a VM
//! snapshot) that then committed more rows than it lost before it pushed numbered them with
//! sequence numbers the serving device had passed: the push said `ok` and the rows never
//! arrived. Now every row arrives: the stamp of the peer's watermark gives the copy away (that
//! push ends `error[17040012]`, the next one sends everything), or, for a database put back
//! alone long enough after the copy, its clock file being ahead of it (a new epoch at open).

use crate::common::*;

fn copy_files(from: &std::path::Path, to: &std::path::Path, names: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for name in names {
        let source = from.join(name);
        let target = to.join(name);
        if source.exists() {
            std::fs::copy(&source, &target).unwrap();
        } else if target.exists() {
            std::fs::remove_file(&target).unwrap();
        }
    }
}

#[test]
fn a_store_put_back_from_a_copy_that_writes_more_than_it_lost_delivers_every_row() {
    for with_clock_file in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
        let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
        let served = serve_for(&a, &b, "SL1", "SL1");
        sql(&a.db, &["INSERT INTO note(id, text) VALUES (1, 'one')"]);
        a.sync_ok(&["--push"]);
        run(peerlite().arg("checkpoint").arg(&a.db));
        let mut names = vec!["notes.db", "notes.db-wal", "notes.db-shm"];
        if with_clock_file {
            names.push("notes.db.clock");
        }
        let snapshot = root.path().join("snapshot");
        copy_files(&a.dir, &snapshot, &names);
        sql(
            &a.db,
            &["INSERT INTO note(id, text) VALUES (2, 'two'), (3, 'three')"],
        );
        a.sync_ok(&["--push"]);
        run(peerlite().arg("checkpoint").arg(&a.db));
        copy_files(&snapshot, &a.dir, &names);
        sql(
            &a.db,
            &[
                "INSERT INTO note(id, text) VALUES (10, 'after'), (11, 'after'), (12, 'after'), (13, 'after')",
            ],
        );
        // With the clock file put back, only the stamp tells; without it, the open tells when
        // the clock file's ceiling lies more than a second past the copy (else the stamp).
        let (code, out, err) = a.sync(&["--push"]);
        if with_clock_file || code != 0 {
            assert_eq!(code, 2, "{out}{err}");
            assert!(out.contains("error[17040012]"), "{out}{err}");
            assert!(err.contains("run the same `peerlite sync` again"), "{err}");
            a.sync_ok(&["--push"]);
        }
        let ids = b.rows(&format!(
            "SELECT id FROM \"{}\" ORDER BY id",
            b.table_of(&a)
        ));
        for id in [1, 10, 11, 12, 13] {
            assert!(
                ids.contains(&serde_json::json!([id])),
                "clock file put back: {with_clock_file}: {id} missing from {ids:?}"
            );
        }
        assert!(served.stop().success());
    }
}
