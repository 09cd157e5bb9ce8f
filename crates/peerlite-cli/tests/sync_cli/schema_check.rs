//! `peerlite schema-check FILE --db DB`: every rule of seed 002, one line per problem
//! (`error[CODE] TABLE.COLUMN: message`, `warning: TABLE.COLUMN: message`), exit 0 valid /
//! 2 not, `--json`, and never a change to the database.

use std::path::Path;

use serde_json::Value as Json;

use crate::common::*;

/// (exit code, stdout) of `schema-check`, with and without `--json`; checks that the two
/// agree line by line and that every line has the documented shape.
fn check(file: &Path, db: &Path) -> (i32, Vec<String>, Json) {
    let before = (file_bytes(db), schema_rows(db));
    let (code, stdout, stderr) = run(peerlite().arg("schema-check").arg(file).arg("--db").arg(db));
    let (jcode, jout, jerr) = run(peerlite()
        .arg("--json")
        .arg("schema-check")
        .arg(file)
        .arg("--db")
        .arg(db));
    assert_eq!(code, jcode, "{stderr} / {jerr}");
    assert!(code == 0 || code == 2, "exit {code}: {stderr}");
    assert_eq!(
        (file_bytes(db), schema_rows(db)),
        before,
        "schema-check changed the database"
    );
    let json: Json = serde_json::from_str(jout.trim()).unwrap();
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let problems = json["problems"].as_array().unwrap();
    let has_error = problems.iter().any(|p| p["severity"] == "error");
    assert_eq!(json["valid"], Json::Bool(!has_error), "{json}");
    assert_eq!(code, if has_error { 2 } else { 0 }, "{json}");
    let expected: Vec<String> = problems.iter().map(line_of).collect();
    assert_eq!(lines, expected, "text and JSON list the same problems");
    for line in &lines {
        assert_shape(line);
    }
    for p in problems {
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["code", "column", "message", "rule", "severity", "table"],
            "{p}"
        );
        assert!(p["code"].is_u64() && p["rule"].is_string() && p["message"].is_string());
        assert!(p["column"].is_null() || p["column"].is_string());
    }
    (code, lines, json)
}

/// The documented text line of a JSON problem.
fn line_of(p: &Json) -> String {
    let table = p["table"].as_str().unwrap();
    let place = match p["column"].as_str() {
        Some(c) => format!(" {table}.{c}"),
        None if table.is_empty() => String::new(),
        None => format!(" {table}"),
    };
    let message = p["message"].as_str().unwrap();
    match p["severity"].as_str().unwrap() {
        "error" => format!("error[{}]{place}: {message}", p["code"]),
        "warning" => format!("warning:{place}: {message}"),
        other => panic!("severity {other}"),
    }
}

/// `error[CODE] TABLE.COLUMN: …`, `error[CODE] TABLE: …`, `error[CODE]: …` or
/// `warning: TABLE.COLUMN: …`.
fn assert_shape(line: &str) {
    if let Some(rest) = line.strip_prefix("error[") {
        let (code, rest) = rest.split_once(']').unwrap();
        assert!(
            code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
            "{line}"
        );
        let rest = match rest.strip_prefix(' ') {
            Some(place_and_msg) => {
                let (place, msg) = place_and_msg.split_once(": ").unwrap();
                assert!(!place.is_empty() && !place.contains(' '), "{line}");
                msg
            }
            None => rest.strip_prefix(": ").unwrap(),
        };
        assert!(!rest.is_empty(), "{line}");
    } else {
        let rest = line.strip_prefix("warning: ").unwrap();
        let (place, msg) = rest.split_once(": ").unwrap();
        assert!(!place.is_empty() && !place.contains(' '), "{line}");
        assert!(!msg.is_empty(), "{line}");
    }
}

/// The lines of `lines` starting with `prefix` (an `error[CODE] PLACE:` head).
fn with_head<'a>(lines: &'a [String], head: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|l| l.starts_with(&format!("{head}: ")))
        .collect()
}

/// A fresh `RdbTest.db` made by `create`, and the schema file `tables` at `version`.
fn case(
    dir: &Path,
    create: &[&str],
    version: i64,
    tables: Vec<Json>,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = dir.join("RdbTest.db");
    sql(&db, create);
    let file = write(dir, "sync_schema.json", &schema("RdbTest", version, tables));
    (db, file)
}

#[test]
fn the_seed_schema_is_valid_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    let (code, lines, json) = check(&file, &db);
    assert_eq!(code, 0);
    assert!(lines.is_empty(), "{lines:?}");
    assert_eq!(json, serde_json::json!({"valid": true, "problems": []}));
    peerlite()
        .arg("schema-check")
        .arg(&file)
        .arg("--db")
        .arg(&db)
        .assert()
        .success()
        .stdout("");
}

#[test]
fn a_database_peerlite_never_opened_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("RdbTest.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "{CREATE_EMPLOYEE}; INSERT INTO EMPLOYEE(NAME) VALUES ('Lisa');"
        ))
        .unwrap();
    }
    let file = write(
        dir.path(),
        "s.json",
        &schema("RdbTest", 0, vec![employee_table()]),
    );
    let before = std::fs::read(&db).unwrap();
    let (code, _, _) = check(&file, &db);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("RdbTest"))
        .collect();
    assert_eq!(
        names,
        ["RdbTest.db"],
        "no -wal, -shm or journal left behind"
    );
}

#[test]
fn an_invalid_schema_changes_nothing_either() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    let bad = write(
        dir.path(),
        "bad.json",
        &schema(
            "RdbTest",
            0,
            vec![table(
                "EMPLOYEE",
                &["ID"],
                vec![field("ID", "Integer", true, false, true)],
            )],
        ),
    );
    let (code, lines, _) = check(&bad, &db);
    assert_eq!(code, 2);
    assert!(!lines.is_empty());
    assert!(distributed(&db).is_empty());
}

/// One example of seed 002 per rule: the table, the schema, and the line that must appear.
#[test]
fn every_seed_rule_is_reported_with_its_code_and_place() {
    let auto = |name: &str| field(name, "Integer", false, false, true);
    let text = |name: &str, pk: bool, nn: bool| field(name, "Text", pk, nn, false);
    let int = |name: &str, pk: bool, nn: bool| field(name, "Integer", pk, nn, false);
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, &str, Vec<Json>, &str)> = vec![
        (
            "two conflict columns",
            "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL PRIMARY KEY, AGE INTEGER UNIQUE)",
            vec![table(
                "EMPLOYEE",
                &["NAME", "AGE"],
                vec![text("NAME", true, true), int("AGE", true, false)],
            )],
            "error[17030002] EMPLOYEE",
        ),
        (
            "a sync column with the wrong case",
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["NAMe", "AGE"],
                vec![
                    auto("ID"),
                    text("NAME", true, true),
                    int("AGE", false, false),
                ],
            )],
            "error[17030006] EMPLOYEE.NAMe",
        ),
        (
            "a UNIQUE column that does not sync",
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER UNIQUE, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["NAME"],
                vec![
                    auto("ID"),
                    text("NAME", true, true),
                    int("AGE", false, false),
                ],
            )],
            "error[17030010] EMPLOYEE.AGE",
        ),
        (
            "the auto-increment key synced",
            CREATE_EMPLOYEE,
            vec![table(
                "EMPLOYEE",
                &["ID", "NAME"],
                vec![auto("ID"), text("NAME", true, true)],
            )],
            "error[17030013] EMPLOYEE.ID",
        ),
        (
            "no deviceSyncFields",
            "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL PRIMARY KEY, AGE INTEGER)",
            vec![
                serde_json::json!({"tableName": "EMPLOYEE", "fields": [text("NAME", true, true), int("AGE", false, false)]}),
            ],
            "error[17030007] EMPLOYEE",
        ),
        (
            "a NOT NULL column without default that does not sync",
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER NOT NULL, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["NAME"],
                vec![
                    auto("ID"),
                    text("NAME", true, true),
                    int("AGE", false, true),
                ],
            )],
            "error[17030011] EMPLOYEE.AGE",
        ),
        (
            "no primary key",
            "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["NAME"],
                vec![text("NAME", true, true), int("AGE", false, false)],
            )],
            "error[17030012] EMPLOYEE",
        ),
        (
            "a plain primary key that is not the conflict column",
            "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL PRIMARY KEY, AGE INTEGER NOT NULL UNIQUE, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["AGE"],
                vec![text("NAME", false, true), int("AGE", true, false)],
            )],
            "error[17030016] EMPLOYEE.NAME",
        ),
        (
            "a plain primary key that does not sync",
            "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL PRIMARY KEY, AGE INTEGER NOT NULL UNIQUE, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["AGE"],
                vec![text("NAME", false, true), int("AGE", true, false)],
            )],
            "error[17030015] EMPLOYEE.NAME",
        ),
        (
            "a conflict column without UNIQUE",
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, SALARY REAL, CODES BLOB)",
            vec![table(
                "EMPLOYEE",
                &["NAME", "AGE"],
                vec![
                    auto("ID"),
                    text("NAME", true, true),
                    int("AGE", false, false),
                ],
            )],
            "error[17030004] EMPLOYEE.NAME",
        ),
        (
            "the auto-increment key as the conflict column",
            CREATE_EMPLOYEE,
            vec![table(
                "EMPLOYEE",
                &["ID", "NAME"],
                vec![
                    field("ID", "Integer", true, false, true),
                    text("NAME", false, true),
                ],
            )],
            "error[17030014] EMPLOYEE.ID",
        ),
        (
            "an unknown field type",
            CREATE_EMPLOYEE,
            vec![table(
                "EMPLOYEE",
                &["NAME", "AGE"],
                vec![
                    auto("ID"),
                    text("NAME", true, true),
                    field("AGE", "Number", false, false, false),
                ],
            )],
            "error[17030018] EMPLOYEE.AGE",
        ),
        (
            "autoIncrement that does not match the table",
            CREATE_EMPLOYEE,
            vec![table(
                "EMPLOYEE",
                &["NAME"],
                vec![int("ID", false, false), text("NAME", true, true)],
            )],
            "error[17030019] EMPLOYEE.ID",
        ),
        (
            "a composite primary key",
            "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL, AGE INTEGER NOT NULL, PRIMARY KEY (NAME, AGE))",
            vec![table(
                "EMPLOYEE",
                &["NAME", "AGE"],
                vec![text("NAME", true, true), int("AGE", false, true)],
            )],
            "error[17030020] EMPLOYEE",
        ),
        (
            "a table the database does not have",
            CREATE_EMPLOYEE,
            vec![table("NOPE", &["NAME"], vec![text("NAME", true, true)])],
            "error[17030021] NOPE",
        ),
    ];
    for (what, create, tables, head) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (db, file) = case(dir.path(), &[create], 0, tables);
        let (code, lines, _) = check(&file, &db);
        assert_eq!(code, 2, "{what}: {lines:?}");
        assert_eq!(
            with_head(&lines, head).len(),
            1,
            "{what}: want `{head}: …` in {lines:?}"
        );
    }
}

#[test]
fn several_problems_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = case(
        dir.path(),
        &[
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER NOT NULL, CODE TEXT UNIQUE)",
        ],
        0,
        vec![table(
            "EMPLOYEE",
            &["ID", "NAMe"],
            vec![
                field("ID", "Integer", false, false, true),
                field("NAME", "Text", true, true, false),
            ],
        )],
    );
    let (code, lines, _) = check(&file, &db);
    assert_eq!(code, 2);
    for head in [
        "error[17030006] EMPLOYEE.NAMe",
        "error[17030013] EMPLOYEE.ID",
        "error[17030004] EMPLOYEE.NAME",
        "error[17030010] EMPLOYEE.CODE",
        "error[17030011] EMPLOYEE.AGE",
    ] {
        assert_eq!(with_head(&lines, head).len(), 1, "{head} in {lines:?}");
    }
}

#[test]
fn a_field_missing_from_fields_is_a_warning_and_still_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = case(
        dir.path(),
        &[CREATE_EMPLOYEE],
        0,
        vec![table(
            "EMPLOYEE",
            &["NAME", "AGE"],
            vec![
                field("ID", "Integer", false, false, true),
                field("NAME", "Text", true, true, false),
            ],
        )],
    );
    let (code, lines, json) = check(&file, &db);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("warning: EMPLOYEE.AGE: "), "{lines:?}");
    assert_eq!(json["valid"], true);
    assert_eq!(json["problems"][0]["severity"], "warning");
    assert_eq!(json["problems"][0]["code"], 17030017);
    assert_eq!(json["problems"][0]["rule"], "FieldNotInFields");
    assert_eq!(json["problems"][0]["table"], "EMPLOYEE");
    assert_eq!(json["problems"][0]["column"], "AGE");
}

#[test]
fn nulls_in_the_conflict_column_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = case(
        dir.path(),
        &[
            "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT UNIQUE, AGE INTEGER)",
            "INSERT INTO EMPLOYEE(NAME, AGE) VALUES (NULL, 25), ('Lisa', 18)",
        ],
        0,
        vec![table(
            "EMPLOYEE",
            &["NAME"],
            vec![field("NAME", "Text", true, false, false)],
        )],
    );
    let (code, lines, _) = check(&file, &db);
    assert_eq!(code, 2);
    assert_eq!(
        with_head(&lines, "error[17030005] EMPLOYEE.NAME").len(),
        1,
        "{lines:?}"
    );
    // Once the NULL is gone the same schema is valid.
    sql(&db, &["DELETE FROM EMPLOYEE WHERE NAME IS NULL"]);
    let (code, lines, _) = check(&file, &db);
    assert_eq!(code, 0, "{lines:?}");
}

#[test]
fn a_schema_for_another_database_names_no_table() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    let other = write(
        dir.path(),
        "other.json",
        &schema("OtherDb", 0, vec![employee_table()]),
    );
    let (code, lines, json) = check(&other, &db);
    assert_eq!(code, 2);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("error[17030023]: "), "{lines:?}");
    assert_eq!(json["problems"][0]["code"], 17030023);
}

#[test]
fn unparsable_json_is_17030022() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = seed_db(dir.path());
    for (name, text) in [
        ("truncated.json", "{\"dbSchema\": ["),
        ("not_json.json", "dbSchema = []"),
        (
            "wrong_shape.json",
            "{\"dbSchema\": [{\"version\": \"zero\"}]}",
        ),
        ("empty.json", ""),
    ] {
        let file = write(dir.path(), name, text);
        let (code, lines, json) = check(&file, &db);
        assert_eq!(code, 2, "{name}");
        assert_eq!(lines.len(), 1, "{name}: {lines:?}");
        assert!(
            lines[0].starts_with("error[17030022]: "),
            "{name}: {lines:?}"
        );
        assert_eq!(json["valid"], false);
        assert_eq!(json["problems"][0]["code"], 17030022);
        assert_eq!(json["problems"][0]["rule"], "Unparsable");
    }
}

#[test]
fn missing_files_fail_without_creating_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let (db, file) = seed_db(dir.path());
    peerlite()
        .arg("schema-check")
        .arg(dir.path().join("nope.json"))
        .arg("--db")
        .arg(&db)
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error["));
    let missing = dir.path().join("missing.db");
    peerlite()
        .arg("schema-check")
        .arg(&file)
        .arg("--db")
        .arg(&missing)
        .assert()
        .code(2)
        .stderr(predicates::str::starts_with("error["));
    assert!(!missing.exists());
    // --db is required.
    peerlite().arg("schema-check").arg(&file).assert().code(1);
}

/// Against a table already distributed with version 0 of a schema: the rules about changes
/// between versions (seed 002: the conflict column cannot change, sync columns can only be
/// added, any change needs a higher version).
mod versions {
    use super::*;

    fn v0_distributed(dir: &Path) -> std::path::PathBuf {
        let db = dir.join("RdbTest.db");
        sql(
            &db,
            &[
                "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER UNIQUE, SALARY REAL)",
            ],
        );
        let v0 = write(
            dir,
            "v0.json",
            &schema(
                "RdbTest",
                0,
                vec![table(
                    "EMPLOYEE",
                    &["NAME", "AGE"],
                    vec![
                        field("ID", "Integer", false, false, true),
                        field("NAME", "Text", true, true, false),
                        field("AGE", "Integer", false, false, false),
                        field("SALARY", "Float", false, false, false),
                    ],
                )],
            ),
        );
        peerlite()
            .arg("distribute")
            .arg(&db)
            .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
            .arg(&v0)
            .assert()
            .success();
        db
    }

    fn employee(version: i64, sync: &[&str], conflict: &str) -> String {
        schema(
            "RdbTest",
            version,
            vec![table(
                "EMPLOYEE",
                sync,
                vec![
                    field("ID", "Integer", false, false, true),
                    field("NAME", "Text", conflict == "NAME", true, false),
                    field("AGE", "Integer", conflict == "AGE", false, false),
                    field("SALARY", "Float", false, false, false),
                ],
            )],
        )
    }

    #[test]
    fn the_same_schema_again_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let db = v0_distributed(dir.path());
        let file = write(dir.path(), "s.json", &employee(0, &["NAME", "AGE"], "NAME"));
        assert_eq!(check(&file, &db).0, 0);
    }

    #[test]
    fn adding_a_sync_column_with_a_higher_version_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let db = v0_distributed(dir.path());
        let file = write(
            dir.path(),
            "s.json",
            &employee(1, &["NAME", "AGE", "SALARY"], "NAME"),
        );
        let (code, lines, _) = check(&file, &db);
        assert_eq!(code, 0, "{lines:?}");
    }

    #[test]
    fn a_change_without_a_higher_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = v0_distributed(dir.path());
        let file = write(
            dir.path(),
            "s.json",
            &employee(0, &["NAME", "AGE", "SALARY"], "NAME"),
        );
        let (code, lines, _) = check(&file, &db);
        assert_eq!(code, 2);
        assert_eq!(
            with_head(&lines, "error[17030009] EMPLOYEE").len(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn removing_a_sync_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = v0_distributed(dir.path());
        let file = write(dir.path(), "s.json", &employee(1, &["NAME"], "NAME"));
        let (code, lines, _) = check(&file, &db);
        assert_eq!(code, 2);
        // AGE is UNIQUE too, so it must sync anyway: both rules name it.
        assert_eq!(
            with_head(&lines, "error[17030008] EMPLOYEE.AGE").len(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn changing_the_conflict_column_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = v0_distributed(dir.path());
        let file = write(dir.path(), "s.json", &employee(1, &["NAME", "AGE"], "AGE"));
        let (code, lines, _) = check(&file, &db);
        assert_eq!(code, 2);
        assert_eq!(
            with_head(&lines, "error[17030003] EMPLOYEE.AGE").len(),
            1,
            "{lines:?}"
        );
    }

    #[test]
    fn a_lower_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = v0_distributed(dir.path());
        let v2 = write(
            dir.path(),
            "v2.json",
            &employee(2, &["NAME", "AGE", "SALARY"], "NAME"),
        );
        peerlite()
            .arg("distribute")
            .arg(&db)
            .args(["EMPLOYEE", "--mode", "single-version", "--schema"])
            .arg(&v2)
            .assert()
            .success();
        let v1 = write(
            dir.path(),
            "v1.json",
            &employee(1, &["NAME", "AGE", "SALARY"], "NAME"),
        );
        let (code, lines, _) = check(&v1, &db);
        assert_eq!(code, 2);
        assert_eq!(
            with_head(&lines, "error[17030009] EMPLOYEE").len(),
            1,
            "{lines:?}"
        );
    }
}
