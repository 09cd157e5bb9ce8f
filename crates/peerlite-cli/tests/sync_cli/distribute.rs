//! `peerlite distribute DB TABLE... [--mode collaboration|single-version] [--schema FILE]`.

use predicates::prelude::*;

use crate::common::*;

#[test]
fn collaboration_is_the_default_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    sql(
        &db,
        &[
            "CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n INTEGER)",
            "CREATE TABLE tag(name TEXT PRIMARY KEY, color TEXT)",
        ],
    );
    let out = stdout_of(peerlite().arg("distribute").arg(&db).args(["note", "tag"]));
    assert_eq!(
        out,
        "distributed note (collaboration, identity id, syncs id, text, n)\n\
         distributed tag (collaboration, identity name, syncs name, color)\n"
    );
    assert_eq!(distributed(&db), ["note", "tag"]);
}

#[test]
fn collaboration_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    sql(
        &db,
        &["CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT, n INTEGER)"],
    );
    let out = json_of(peerlite().arg("--json").arg("distribute").arg(&db).args([
        "note",
        "--mode",
        "collaboration",
    ]));
    assert_eq!(
        out,
        serde_json::json!({"distributed": [{
            "table": "note", "mode": "collaboration", "identity": "id",
            "columns": ["id", "text", "n"], "schema_version": 0,
        }]})
    );
}

#[test]
fn single_version_with_the_seed_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    let out = stdout_of(
        peerlite()
            .arg("distribute")
            .arg(&db)
            .args([
                "EMPLOYEE",
                "EMPLOYEE2",
                "--mode",
                "single-version",
                "--schema",
            ])
            .arg(&file),
    );
    assert_eq!(
        out,
        "distributed EMPLOYEE (single-version, identity NAME, syncs NAME, AGE, SALARY, CODES)\n\
         distributed EMPLOYEE2 (single-version, identity NAME, syncs NAME, AGE, SALARY, CODES)\n"
    );
    assert_eq!(distributed(&db), ["EMPLOYEE", "EMPLOYEE2"]);
}

#[test]
fn single_version_json() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    let out = json_of(
        peerlite()
            .arg("--json")
            .arg("distribute")
            .arg(&db)
            .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
            .arg(&file),
    );
    assert_eq!(
        out,
        serde_json::json!({"distributed": [{
            "table": "EMPLOYEE", "mode": "single-version", "identity": "NAME",
            "columns": ["NAME", "AGE", "SALARY", "CODES"], "schema_version": 0,
        }]})
    );
    assert_eq!(distributed(&db), ["EMPLOYEE"], "only the table named");
}

#[test]
fn the_schema_version_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    let v3 = write(
        dir.path(),
        "v3.json",
        &schema("RdbTest", 3, vec![employee_table()]),
    );
    let out = json_of(
        peerlite()
            .arg("--json")
            .arg("distribute")
            .arg(&db)
            .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
            .arg(&v3),
    );
    assert_eq!(out["distributed"][0]["schema_version"], 3);
}

#[test]
fn existing_rows_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    sql(
        &db,
        &["INSERT INTO EMPLOYEE(NAME, AGE) VALUES ('Lisa', 18), ('Bo', 30)"],
    );
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&file)
        .assert()
        .success();
    let changes = json_of(peerlite().arg("--json").arg("changes").arg(&db));
    let mut keys: Vec<String> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    assert_eq!(keys, ["Bo", "Lisa"]);
}

#[test]
fn distributing_again_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    sql(
        &db,
        &["CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT)"],
    );
    for _ in 0..2 {
        assert_eq!(
            stdout_of(peerlite().arg("distribute").arg(&db).arg("note")),
            "distributed note (collaboration, identity id, syncs id, text)\n"
        );
    }
    assert_eq!(distributed(&db), ["note"]);
}

#[test]
fn single_version_without_a_schema_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("--schema"));
    assert!(distributed(&db).is_empty());
}

#[test]
fn usage_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    // No table.
    peerlite().arg("distribute").arg(&db).assert().code(1);
    // An unknown mode.
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "cloud"])
        .assert()
        .code(1);
    assert!(distributed(&db).is_empty());
}

/// A schema that breaks rules: exit 2, one `error[CODE]` line per problem on stderr (the
/// same problems `schema-check` lists), a hint, and nothing distributed.
#[test]
fn a_schema_that_breaks_rules_distributes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("RdbTest.db");
    sql(
        &db,
        &[
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER NOT NULL UNIQUE, SALARY REAL)",
        ],
    );
    let bad = write(
        dir.path(),
        "bad.json",
        &schema(
            "RdbTest",
            0,
            vec![table(
                "EMPLOYEE",
                &["ID", "NAMe"],
                vec![
                    field("ID", "Integer", false, false, true),
                    field("NAME", "Text", true, true, false),
                    field("AGE", "Integer", false, true, false),
                ],
            )],
        ),
    );
    let check = json_of_failing(
        peerlite()
            .arg("--json")
            .arg("schema-check")
            .arg(&bad)
            .arg("--db")
            .arg(&db),
    );
    let codes: Vec<u64> = check["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| p["code"].as_u64().unwrap())
        .collect();
    assert!(codes.len() >= 4, "{check}");

    let (code, stdout, stderr) = run(peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&bad));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    let error_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error[")).collect();
    assert_eq!(error_lines.len(), codes.len(), "{stderr}");
    let mut listed: Vec<u64> = error_lines
        .iter()
        .map(|l| l["error[".len()..l.find(']').unwrap()].parse().unwrap())
        .collect();
    let mut want = codes.clone();
    listed.sort_unstable();
    want.sort_unstable();
    assert_eq!(listed, want, "{stderr}");
    assert!(stderr.lines().any(|l| l.starts_with("hint: ")), "{stderr}");
    for needle in ["EMPLOYEE.NAMe", "EMPLOYEE.ID", "EMPLOYEE.NAME"] {
        assert!(stderr.contains(needle), "{needle} in {stderr}");
    }
    assert!(distributed(&db).is_empty());
}

fn json_of_failing(cmd: &mut assert_cmd::Command) -> serde_json::Value {
    let out = cmd.assert().code(2).get_output().stdout.clone();
    serde_json::from_str(String::from_utf8(out).unwrap().trim()).unwrap()
}

#[test]
fn one_bad_table_distributes_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("RdbTest.db");
    sql(
        &db,
        &[
            CREATE_EMPLOYEE,
            "CREATE TABLE EMPLOYEE2 (NAME TEXT NOT NULL, AGE INTEGER)",
        ],
    );
    let file = write(
        dir.path(),
        "s.json",
        &schema("RdbTest", 0, vec![employee_table(), employee2_table()]),
    );
    let (code, _, stderr) = run(peerlite()
        .arg("distribute")
        .arg(&db)
        .args([
            "EMPLOYEE",
            "EMPLOYEE2",
            "--mode",
            "single-version",
            "--schema",
        ])
        .arg(&file));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error[17030012]"),
        "no primary key: {stderr}"
    );
    assert!(
        distributed(&db).is_empty(),
        "EMPLOYEE was not distributed either"
    );
}

#[test]
fn an_unparsable_schema_fails_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    let broken = write(dir.path(), "broken.json", "{\"dbSchema\": [");
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("error[17030022]"))
        .stderr(predicate::str::contains("\nhint: "));
    assert!(distributed(&db).is_empty());
}

#[test]
fn a_missing_database_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missing.db");
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("note")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error["));
    assert!(!db.exists());
    let file = write(
        dir.path(),
        "s.json",
        &schema("missing", 0, vec![employee_table()]),
    );
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&file)
        .assert()
        .code(2);
    assert!(!db.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only s.json"
    );
}

#[test]
fn a_missing_table_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    sql(&db, &["CREATE TABLE note(id INTEGER PRIMARY KEY)"]);
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["note", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    assert!(
        distributed(&db).is_empty(),
        "note was not distributed either"
    );
}

#[test]
fn a_mode_mismatch_fails_with_14800051() {
    // Collaboration first, then single-version.
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("EMPLOYEE2")
        .assert()
        .success();
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&file)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with("error[14800051]"))
        .stderr(predicate::str::contains("\nhint: "));
    assert_eq!(distributed(&db), ["EMPLOYEE2"]);

    // Single-version first, then collaboration.
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
        .arg(&file)
        .assert()
        .success();
    peerlite()
        .arg("distribute")
        .arg(&db)
        .args(["EMPLOYEE2", "--mode", "collaboration"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[14800051]"));
    // Re-distributing the same table in the other mode is refused too.
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("EMPLOYEE")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[14800051]"));
    assert_eq!(distributed(&db), ["EMPLOYEE"]);
    let out = json_of(
        peerlite()
            .arg("--json")
            .arg("distribute")
            .arg(&db)
            .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
            .arg(&file),
    );
    assert_eq!(out["distributed"][0]["mode"], "single-version");
}

#[test]
fn a_composite_key_cannot_be_distributed_in_either_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    sql(
        &db,
        &["CREATE TABLE pair(a INTEGER, b INTEGER, v TEXT, PRIMARY KEY(a, b))"],
    );
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("pair")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error[17030020]"));
    assert!(distributed(&db).is_empty());
}

#[test]
fn peerlite_own_tables_cannot_be_distributed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    sql(&db, &["CREATE TABLE note(id INTEGER PRIMARY KEY)"]);
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("peerlite_meta")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error["));
    assert!(distributed(&db).is_empty());
}

#[test]
fn an_encrypted_database_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("secret.db");
    peerlite()
        .args(["--key", "pw", "sql"])
        .arg(&db)
        .arg("CREATE TABLE note(id INTEGER PRIMARY KEY, text TEXT)")
        .assert()
        .success();
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("note")
        .assert()
        .code(2);
    peerlite()
        .arg("distribute")
        .arg(&db)
        .arg("note")
        .env("PEERLITE_KEY", "pw")
        .assert()
        .success()
        .stdout("distributed note (collaboration, identity id, syncs id, text)\n");
}

/// Every problem of every named table is listed, as `schema-check` lists them — not only
/// those of the first table that fails.
#[test]
fn problems_of_every_table_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("RdbTest.db");
    sql(
        &db,
        &[
            CREATE_EMPLOYEE,
            "CREATE TABLE EMPLOYEE2 (NAME TEXT NOT NULL, AGE INTEGER NOT NULL)",
        ],
    );
    let file = write(
        dir.path(),
        "s.json",
        &schema(
            "RdbTest",
            0,
            vec![
                table(
                    "EMPLOYEE",
                    &["NAMe"],
                    vec![
                        field("ID", "Integer", false, false, true),
                        field("NAME", "Text", true, true, false),
                    ],
                ),
                table(
                    "EMPLOYEE2",
                    &["NAME"],
                    vec![field("NAME", "Text", true, true, false)],
                ),
            ],
        ),
    );
    let check = json_of_failing(
        peerlite()
            .arg("--json")
            .arg("schema-check")
            .arg(&file)
            .arg("--db")
            .arg(&db),
    );
    let mut want: Vec<u64> = check["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| p["code"].as_u64().unwrap())
        .collect();
    want.sort_unstable();
    let (code, _, stderr) = run(peerlite()
        .arg("distribute")
        .arg(&db)
        .args([
            "EMPLOYEE",
            "EMPLOYEE2",
            "--mode",
            "single-version",
            "--schema",
        ])
        .arg(&file));
    assert_eq!(code, 2);
    let mut listed: Vec<u64> = stderr
        .lines()
        .filter(|l| l.starts_with("error["))
        .map(|l| l["error[".len()..l.find(']').unwrap()].parse().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, want, "{stderr}");
    assert!(stderr.contains("EMPLOYEE2"), "{stderr}");
    assert!(distributed(&db).is_empty());
}

/// Tables distributed with the command sync between devices like any others: the phone's
/// rows reach the laptop, and `changes` there names the phone as their origin.
#[test]
fn tables_distributed_by_the_command_sync() {
    use peerlite::sync::{SyncMode, sync_in_memory};
    use peerlite::{RdbStore, StoreConfig, bucket};

    let dir = tempfile::tempdir().unwrap();
    let mut dbs = Vec::new();
    for device in ["phone", "laptop"] {
        let home = dir.path().join(device);
        std::fs::create_dir_all(&home).unwrap();
        let db = home.join("RdbTest.db");
        // Create the database as `device`; the command keeps the id it finds there.
        RdbStore::open(StoreConfig::new(&db).device_id(device))
            .unwrap()
            .close()
            .unwrap();
        sql(&db, &[CREATE_EMPLOYEE]);
        let file = write(
            &home,
            "sync_schema.json",
            &schema("RdbTest", 0, vec![employee_table()]),
        );
        peerlite()
            .arg("distribute")
            .arg(&db)
            .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
            .arg(&file)
            .assert()
            .success();
        dbs.push(db);
    }
    let phone = RdbStore::open(StoreConfig::new(&dbs[0])).unwrap();
    let laptop = RdbStore::open(StoreConfig::new(&dbs[1])).unwrap();
    assert_eq!((phone.device_id(), laptop.device_id()), ("phone", "laptop"));
    phone
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    let (on_phone, on_laptop) = sync_in_memory(&phone, &laptop, SyncMode::Push, None).unwrap();
    assert_eq!(
        (on_phone.status.code(), on_laptop.status.code()),
        (0, 0),
        "{on_phone:?}"
    );
    assert_eq!(on_laptop.received, 1);
    phone.close().unwrap();
    laptop.close().unwrap();
    assert_eq!(
        query(&dbs[1], "SELECT NAME, AGE FROM EMPLOYEE"),
        serde_json::json!([{"NAME": "Lisa", "AGE": 18}])
    );
    let changes = json_of(peerlite().arg("--json").arg("changes").arg(&dbs[1]));
    assert_eq!(changes[0]["key"], "Lisa");
    assert_eq!(changes[0]["origin"], "phone");
}
