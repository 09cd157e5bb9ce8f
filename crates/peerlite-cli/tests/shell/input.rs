//! Item 13, input. `peerlite sql` took statements only as arguments and `kv put` its value
//! only as an argument, which the system caps at 128 KiB: a script file had to be pasted, and
//! the store's 4 MiB value limit was out of reach. `sql` now reads `--file F` and standard input
//! (`-`), `kv put` reads `--file F` (`-`: standard input).

use super::{json_of, peerlite, stdout_of};

#[test]
fn sql_reads_statements_from_a_file_and_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let script = dir.path().join("schema.sql");
    std::fs::write(
        &script,
        "-- a script file\nCREATE TABLE t(x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n",
    )
    .unwrap();
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("--file")
        .arg(&script)
        .assert()
        .success();
    peerlite()
        .arg("sql")
        .arg(&db)
        .arg("-")
        .write_stdin("INSERT INTO t VALUES (3); SELECT count(*) AS n FROM t;")
        .assert()
        .success()
        .stdout("n\n-\n3\n");
    peerlite()
        .args(["--json", "sql"])
        .arg(&db)
        .args(["--file", "-"])
        .write_stdin("SELECT sum(x) AS s FROM t")
        .assert()
        .success()
        .stdout("{\"columns\":[\"s\"],\"rows\":[[6]]}\n");
    // Standard input is read once; nothing to run is a usage error.
    peerlite()
        .arg("sql")
        .arg(&db)
        .args(["-", "--file", "-"])
        .assert()
        .code(1);
    peerlite().arg("sql").arg(&db).assert().code(1);
    peerlite()
        .arg("sql")
        .arg(&db)
        .args(["--file", "/no/such/file.sql"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("/no/such/file.sql"));
}

#[test]
fn kv_put_takes_a_value_up_to_the_4_mib_limit_from_a_file_or_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let stores = dir.path().join("kv");
    let kv = |args: &[&str]| {
        let mut cmd = peerlite();
        cmd.arg("kv").arg(&stores).arg("blobs").args(args);
        cmd
    };
    let limit = 4 * 1024 * 1024;
    let bytes: Vec<u8> = (0..limit).map(|i| (i % 251) as u8).collect();
    let file = dir.path().join("value.bin");
    std::fs::write(&file, &bytes).unwrap();
    kv(&[
        "put",
        "big",
        "--type",
        "bytes",
        "--file",
        file.to_str().unwrap(),
    ])
    .assert()
    .success();
    let got = json_of(kv(&["get", "big"]).arg("--json"));
    assert_eq!(got["type"], "bytes");
    assert_eq!(
        got["value"].as_str().unwrap().len(),
        2 * limit,
        "every byte kept"
    );
    let text = "x".repeat(limit);
    kv(&["put", "text", "--file", "-"])
        .write_stdin(text.clone())
        .assert()
        .success();
    assert_eq!(stdout_of(&mut kv(&["get", "text"])).trim_end(), text);
    kv(&["put", "n", "--type", "integer", "--file", "-"])
        .write_stdin("42\n")
        .assert()
        .success();
    assert_eq!(stdout_of(&mut kv(&["get", "n"])), "42\n");
    // One byte past the limit is the store's refusal with its code; not UTF-8 text says so.
    kv(&["put", "huge", "--file", "-"])
        .write_stdin("x".repeat(limit + 1))
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error[401]"));
    kv(&["put", "bin", "--file", file.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--type bytes"));
    kv(&["put", "both", "v", "--file", "-"]).assert().code(1);
}
