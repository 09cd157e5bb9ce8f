//! The rules one at a time, beyond the seed's examples: each rule alone where a table can break
//! it alone, the rules the seed states without an example (types, autoIncrement, composite
//! keys, the file itself), case sensitivity, UNIQUE via indexes, and how problems read.

use peerlite::schema::{Rule, SchemaProblem, Severity, SyncSchema};
use peerlite::{Error, bucket};

use crate::common::*;

/// `(columnName, type, primaryKey, autoIncrement, notNull)` shorthands.
const fn field<'a>(name: &'a str, ty: &'a str) -> F<'a> {
    (name, ty, false, false, false)
}
const fn conflict<'a>(name: &'a str, ty: &'a str) -> F<'a> {
    (name, ty, true, false, true)
}

// ---------------------------------------------------------------------------------------------
// Codes.
// ---------------------------------------------------------------------------------------------

#[test]
fn every_rule_has_its_stable_code() {
    use Rule::*;
    let expected = [
        (NoConflictColumn, 17030001),
        (MultipleConflictColumns, 17030002),
        (ConflictColumnChanged, 17030003),
        (ConflictColumnNotUnique, 17030004),
        (ConflictColumnNulls, 17030005),
        (SyncColumnMissing, 17030006),
        (NoSyncColumns, 17030007),
        (SyncColumnsRemoved, 17030008),
        (VersionNotIncreased, 17030009),
        (UniqueColumnNotSynced, 17030010),
        (NotNullColumnNotSynced, 17030011),
        (NoPrimaryKey, 17030012),
        (AutoIncrementSynced, 17030013),
        (AutoIncrementConflictColumn, 17030014),
        (KeyNotSynced, 17030015),
        (KeyNotConflictColumn, 17030016),
        (FieldNotInFields, 17030017),
        (UnknownType, 17030018),
        (AutoIncrementMismatch, 17030019),
        (CompositeKey, 17030020),
        (TableMissing, 17030021),
        (Unparsable, 17030022),
        (DatabaseMissing, 17030023),
    ];
    for (rule, code) in expected {
        assert_eq!(rule.code(), code, "{rule:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The file itself.
// ---------------------------------------------------------------------------------------------

fn assert_unparsable(text: &str) {
    let err = SyncSchema::parse(text).expect_err(text);
    assert_eq!(err.code(), 17030022, "{text}");
    let problems = schema_problems(&err);
    assert_eq!(rules(problems), [Rule::Unparsable], "{text}");
    assert_eq!(problems[0].severity, Severity::Error);
    assert_eq!(problems[0].code(), 17030022);
    assert!(!problems[0].message.is_empty());
}

#[test]
fn text_that_is_not_json_is_unparsable() {
    for text in ["", "{", "not json", "{\"dbSchema\": [", "[]", "null", "42"] {
        assert_unparsable(text);
    }
}

#[test]
fn json_of_another_shape_is_unparsable() {
    for text in [
        r#"{}"#,
        r#"{"dbSchema": {}}"#,
        r#"{"dbSchema": [{"version": "0", "bundleName": "b", "dbName": "RdbTest", "tables": []}]}"#,
        r#"{"dbSchema": [{"version": 0, "bundleName": "b", "dbName": "RdbTest", "tables": {}}]}"#,
        r#"{"dbSchema": [{"version": 0, "bundleName": "b", "dbName": "RdbTest", "tables": [{"tableName": "T", "deviceSyncFields": "NAME", "fields": []}]}]}"#,
        r#"{"dbSchema": [{"version": 0, "bundleName": "b", "dbName": "RdbTest", "tables": [{"tableName": "T", "fields": [{"columnName": "NAME", "type": "Text", "primaryKey": "yes"}]}]}]}"#,
    ] {
        assert_unparsable(text);
    }
}

#[test]
fn required_fields_missing_make_the_file_unparsable() {
    // Seed: version, bundleName, dbName (per database), tableName (per table), columnName and
    // type (per field) are 必填字段.
    let file = |db: &str, table: &str, field: &str| {
        format!(
            r#"{{"dbSchema": [{{{db}"tables": [{{{table}"deviceSyncFields": ["NAME"], "fields": [{{{field}"primaryKey": true}}]}}]}}]}}"#
        )
    };
    let db = r#""version": 0, "bundleName": "b", "dbName": "RdbTest", "#;
    let table = r#""tableName": "EMPLOYEE", "#;
    let field = r#""columnName": "NAME", "type": "Text", "#;
    let complete = parse(&file(db, table, field));
    assert_eq!(complete.db_schema[0].tables[0].conflict_columns(), ["NAME"]);
    for db in [
        r#""bundleName": "b", "dbName": "RdbTest", "#,
        r#""version": 0, "dbName": "RdbTest", "#,
        r#""version": 0, "bundleName": "b", "#,
    ] {
        assert_unparsable(&file(db, table, field));
    }
    assert_unparsable(&file(db, "", field));
    assert_unparsable(&file(db, table, r#""type": "Text", "#));
    assert_unparsable(&file(db, table, r#""columnName": "NAME", "#));
}

#[test]
fn optional_flags_default_to_false() {
    // primaryKey, autoIncrement and notNull may be left out (default false).
    let schema = parse(
        r#"{"dbSchema": [{"version": 0, "bundleName": "b", "dbName": "RdbTest", "tables": [
            {"tableName": "EMPLOYEE", "deviceSyncFields": ["NAME", "AGE"], "fields": [
              {"columnName": "NAME", "type": "Text", "primaryKey": true},
              {"columnName": "AGE", "type": "Integer"}]}]}]}"#,
    );
    let t = &schema.db_schema[0].tables[0];
    assert_eq!(t.conflict_columns(), ["NAME"]);
    let age = t.field("AGE").unwrap();
    assert!(!age.primary_key && !age.auto_increment && !age.not_null);
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
}

#[test]
fn schema_is_read_from_a_file() {
    let (dir, store) = store_with(&[EMPLOYEE_SV, EMPLOYEE2_SV]);
    let path = dir.path().join("sync_schema.json");
    std::fs::write(&path, crate::seed_examples::SEED_CORRECT).unwrap();
    let schema = SyncSchema::read(&path).unwrap();
    assert_eq!(schema, parse(crate::seed_examples::SEED_CORRECT));
    set_single(&store, &["EMPLOYEE", "EMPLOYEE2"], &schema).unwrap();

    // No file: nothing to distribute with.
    assert!(SyncSchema::read(&dir.path().join("missing.json")).is_err());
    // A file that is not a schema.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    assert_eq!(SyncSchema::read(&bad).unwrap_err().code(), 17030022);
}

// ---------------------------------------------------------------------------------------------
// dbName and tables.
// ---------------------------------------------------------------------------------------------

#[test]
fn database_missing_from_the_schema() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let t = table_json("EMPLOYEE", Some(&["NAME"]), &[conflict("NAME", "Text")]);
    // Another database's name, and the file name with its extension (the seed says
    // "RdbTest.db" is configured as "RdbTest").
    for db in ["OtherDb", "RdbTest.db"] {
        let schema = parse(&schema_json_for(db, 0, std::slice::from_ref(&t)));
        let problems = store.check_sync_schema(&schema).unwrap();
        assert_eq!(rules(&problems), [Rule::DatabaseMissing], "{db}");
        assert_eq!(problems[0].severity, Severity::Error);
        let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
        assert_eq!(err.code(), 17030023, "{db}");
        assert!(
            schema_problems(&err)
                .iter()
                .any(|p| p.rule == Rule::DatabaseMissing)
        );
    }
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn each_store_uses_the_entry_named_after_its_file() {
    let (_dir, store) = store_named("Shop.db");
    store.execute(EMPLOYEE_SV, &[]).unwrap();
    // Two databases in one file: RdbTest's entry would be wrong for this table (two conflict
    // columns); Shop's is right.
    let wrong = table_json(
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), conflict("AGE", "Integer")],
    );
    let right = table_json("EMPLOYEE", Some(&["NAME"]), &[conflict("NAME", "Text")]);
    let text = format!(
        r#"{{"dbSchema": [
          {{"version": 3, "bundleName": "{BUNDLE}", "dbName": "RdbTest", "tables": [{wrong}]}},
          {{"version": 7, "bundleName": "{BUNDLE}", "dbName": "Shop", "tables": [{right}]}}]}}"#
    );
    let schema = parse(&text);
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").schema_version, 7);
}

#[test]
fn table_missing_from_the_schema() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV, EMPLOYEE2_SV]);
    // The schema describes EMPLOYEE2 only.
    let schema = one_table(0, "EMPLOYEE2", Some(&["NAME"]), &[conflict("NAME", "Text")]);
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030021);
    let p = problem(schema_problems(&err), Rule::TableMissing);
    assert_eq!(p.table, "EMPLOYEE");
    // Together with a table it does describe: neither is distributed.
    let err = set_single(&store, &["EMPLOYEE2", "EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030021);
    assert_nothing_distributed(&store, "EMPLOYEE2", &bucket! { "NAME" => "x" });
}

#[test]
fn table_described_but_not_in_the_database() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = schema(
        0,
        &[
            table_json("EMPLOYEE", Some(&["NAME"]), &[conflict("NAME", "Text")]),
            table_json("GHOST", Some(&["NAME"]), &[conflict("NAME", "Text")]),
        ],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    assert_eq!(rules(&problems), [Rule::TableMissing]);
    assert_eq!(problems[0].table, "GHOST");
    assert_eq!(problems[0].code(), 17030021);
    // EMPLOYEE alone can be distributed with it; GHOST cannot (there is no such table).
    assert!(set_single(&store, &["GHOST"], &schema).is_err());
    assert!(store.distributed_tables().unwrap().is_empty());
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").columns, ["NAME"]);
}

// ---------------------------------------------------------------------------------------------
// Case sensitivity.
// ---------------------------------------------------------------------------------------------

#[test]
fn misspelt_case_of_a_sync_column_alone_is_refused() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    for wrong in ["NAMe", "name", "Age", "age"] {
        let schema = one_table(
            0,
            "EMPLOYEE",
            Some(&["NAME", wrong]),
            &[conflict("NAME", "Text"), field(wrong, "Integer")],
        );
        let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::SyncColumnMissing);
        assert_eq!(error_rules(&problems), [Rule::SyncColumnMissing], "{wrong}");
        assert_eq!(problems[0].column.as_deref(), Some(wrong), "{problems:#?}");
    }
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn a_field_described_in_another_case_does_not_sync() {
    // deviceSyncFields says AGE, fields describes "age": AGE is not in fields (warning), and
    // does not sync.
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("age", "Integer")],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    assert_eq!(rules(&problems), [Rule::FieldNotInFields]);
    assert_eq!(problems[0].column.as_deref(), Some("AGE"));
    assert_eq!(problems[0].severity, Severity::Warning);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").columns, ["NAME"]);
}

#[test]
fn table_names_are_case_sensitive() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = one_table(0, "employee", Some(&["NAME"]), &[conflict("NAME", "Text")]);
    let problems = store.check_sync_schema(&schema).unwrap();
    assert_eq!(rules(&problems), [Rule::TableMissing]);
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030021);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// Conflict column.
// ---------------------------------------------------------------------------------------------

#[test]
fn auto_increment_table_needs_a_conflict_column() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[field("NAME", "Text"), field("AGE", "Integer")],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::NoConflictColumn);
    assert_eq!(error_rules(&problems), [Rule::NoConflictColumn]);
    assert_eq!(problems[0].column, None);
    assert_eq!(
        set_single(&store, &["EMPLOYEE"], &schema)
            .unwrap_err()
            .code(),
        17030001
    );
}

#[test]
fn key_table_without_primary_key_flag_uses_its_key() {
    // Seed: primaryKey "若是自增表,该字段为必填字段" — required for auto-increment tables only;
    // and for a non-auto-increment key "解冲突列必须为主键", so the key is the conflict column.
    let (_dir, store) = store_with(&[EMPLOYEE2_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE2",
        Some(&["NAME", "AGE"]),
        &[
            ("NAME", "Text", false, false, true),
            field("AGE", "Integer"),
        ],
    );
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE2"], &schema).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE2").identity, "NAME");
}

#[test]
fn non_auto_increment_key_must_resolve_conflicts() {
    // The key syncs but AGE resolves conflicts: only "解冲突列必须为主键" is broken.
    let (_dir, store) = store_with(&[
        "CREATE TABLE EMPLOYEE (NAME TEXT NOT NULL PRIMARY KEY, AGE INTEGER NOT NULL UNIQUE, SALARY REAL, CODES BLOB)",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[field("NAME", "Text"), conflict("AGE", "Integer")],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::KeyNotConflictColumn);
    assert_eq!(error_rules(&problems), [Rule::KeyNotConflictColumn]);
    assert_eq!(problems[0].column.as_deref(), Some("NAME"));
    assert_eq!(
        set_single(&store, &["EMPLOYEE"], &schema)
            .unwrap_err()
            .code(),
        17030016
    );
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x", "AGE" => 1 });
}

#[test]
fn non_auto_increment_key_must_sync() {
    // NAME is the key and resolves conflicts, but does not sync: "主键必须同步".
    let (_dir, store) = store_with(&[EMPLOYEE2_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE2",
        Some(&["AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE2"], &schema, Rule::KeyNotSynced);
    assert_eq!(problems[0].rule, Rule::KeyNotSynced);
    assert_eq!(problems[0].column.as_deref(), Some("NAME"));
    assert!(!error_rules(&problems).contains(&Rule::KeyNotConflictColumn));
    assert_eq!(
        set_single(&store, &["EMPLOYEE2"], &schema)
            .unwrap_err()
            .code(),
        17030015
    );
}

#[test]
fn auto_increment_key_cannot_resolve_conflicts_even_unsynced() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME"]),
        &[("ID", "Integer", true, true, false), field("NAME", "Text")],
    );
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &schema,
        Rule::AutoIncrementConflictColumn,
    );
    assert_eq!(error_rules(&problems), [Rule::AutoIncrementConflictColumn]);
    assert_eq!(
        set_single(&store, &["EMPLOYEE"], &schema)
            .unwrap_err()
            .code(),
        17030014
    );
}

#[test]
fn unique_index_makes_a_column_unique() {
    let (_dir, store) = store_with(&[
        EMPLOYEE_DC,
        "CREATE UNIQUE INDEX EMPLOYEE_NAME ON EMPLOYEE(NAME)",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
}

#[test]
fn unique_pair_does_not_make_either_column_unique() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, UNIQUE (NAME, AGE))",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &schema,
        Rule::ConflictColumnNotUnique,
    );
    assert_eq!(error_rules(&problems), [Rule::ConflictColumnNotUnique]);
}

#[test]
fn partial_unique_index_does_not_make_a_column_unique() {
    let (_dir, store) = store_with(&[
        EMPLOYEE_DC,
        "CREATE UNIQUE INDEX EMPLOYEE_NAME ON EMPLOYEE(NAME) WHERE AGE > 18",
    ]);
    // Two rows with the same NAME are allowed by this index: NAME is not globally unique.
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 10 })
        .unwrap();
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 11 })
        .unwrap();
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    assert_rejected(
        &store,
        &["EMPLOYEE"],
        &schema,
        Rule::ConflictColumnNotUnique,
    );
}

#[test]
fn unique_expression_index_is_no_obstacle() {
    // An index on an expression names no column; it must not stop the check.
    let (_dir, store) = store_with(&[
        EMPLOYEE_SV,
        "CREATE UNIQUE INDEX EMPLOYEE_LOWER_NAME ON EMPLOYEE(lower(NAME))",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();

    // Device collaboration reads no schema, but the table all the same.
    let (_dir2, store) = store_with(&[
        EMPLOYEE_DC,
        "CREATE UNIQUE INDEX EMPLOYEE_LOWER_NAME ON EMPLOYEE(lower(NAME))",
    ]);
    set_collab(&store, &["EMPLOYEE"]).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Columns that must sync, and those that need not.
// ---------------------------------------------------------------------------------------------

#[test]
fn unique_index_column_must_sync() {
    let (_dir, store) = store_with(&[
        EMPLOYEE_SV,
        "CREATE UNIQUE INDEX EMPLOYEE_AGE ON EMPLOYEE(AGE)",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::UniqueColumnNotSynced);
    assert_eq!(error_rules(&problems), [Rule::UniqueColumnNotSynced]);
    assert_eq!(problems[0].column.as_deref(), Some("AGE"));
}

#[test]
fn not_null_column_with_a_default_need_not_sync() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, NAME TEXT NOT NULL UNIQUE, AGE INTEGER NOT NULL DEFAULT 0, SALARY REAL, CODES BLOB)",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME"]),
        &[
            ("ID", "Integer", false, true, true),
            conflict("NAME", "Text"),
            ("AGE", "Integer", false, false, true),
        ],
    );
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").columns, ["NAME"]);
}

#[test]
fn columns_left_out_of_the_schema_do_not_sync() {
    // SALARY and CODES are neither described nor synced: they stay local.
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME", "AGE"]);
    assert_eq!(m.identity, "NAME");
}

// ---------------------------------------------------------------------------------------------
// Types and autoIncrement.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_six_types_are_accepted() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE ALLTYPES (ID INTEGER PRIMARY KEY AUTOINCREMENT, UUID TEXT NOT NULL UNIQUE, I INTEGER, L INTEGER, F REAL, D REAL, B BLOB)",
    ]);
    let schema = one_table(
        0,
        "ALLTYPES",
        Some(&["UUID", "I", "L", "F", "D", "B"]),
        &[
            conflict("UUID", "Text"),
            field("I", "Integer"),
            field("L", "Long"),
            field("F", "Float"),
            field("D", "Double"),
            field("B", "Blob"),
        ],
    );
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["ALLTYPES"], &schema).unwrap();
    assert_eq!(
        meta(&store, "ALLTYPES").columns,
        ["UUID", "I", "L", "F", "D", "B"]
    );
}

#[test]
fn unknown_type_is_refused() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    for ty in ["String", "REAL", "Boolean", ""] {
        let schema = one_table(
            0,
            "EMPLOYEE",
            Some(&["NAME", "AGE"]),
            &[conflict("NAME", "Text"), field("AGE", ty)],
        );
        let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::UnknownType);
        assert_eq!(error_rules(&problems), [Rule::UnknownType], "{ty:?}");
        assert_eq!(problems[0].column.as_deref(), Some("AGE"));
        assert_eq!(
            set_single(&store, &["EMPLOYEE"], &schema)
                .unwrap_err()
                .code(),
            17030018
        );
    }
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn auto_increment_flag_must_match_the_table() {
    // "autoIncrement:是否自增属性,必须与表结构中对应".
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    // ID is AUTOINCREMENT in the table but not in the schema.
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME"]),
        &[field("ID", "Integer"), conflict("NAME", "Text")],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::AutoIncrementMismatch);
    assert_eq!(error_rules(&problems), [Rule::AutoIncrementMismatch]);
    assert_eq!(problems[0].column.as_deref(), Some("ID"));
    // AGE is not auto-increment, the schema says it is.
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[
            conflict("NAME", "Text"),
            ("AGE", "Integer", false, true, false),
        ],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::AutoIncrementMismatch);
    assert_eq!(error_rules(&problems), [Rule::AutoIncrementMismatch]);
    assert_eq!(problems[0].column.as_deref(), Some("AGE"));
    assert_eq!(
        set_single(&store, &["EMPLOYEE"], &schema)
            .unwrap_err()
            .code(),
        17030019
    );
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn key_table_field_marked_auto_increment_is_refused() {
    let (_dir, store) = store_with(&[EMPLOYEE2_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE2",
        Some(&["NAME"]),
        &[("NAME", "Text", true, true, true)],
    );
    let problems = assert_rejected(&store, &["EMPLOYEE2"], &schema, Rule::AutoIncrementMismatch);
    assert_eq!(error_rules(&problems), [Rule::AutoIncrementMismatch]);
}

#[test]
fn auto_increment_is_read_from_the_key_not_from_any_text() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE NOTES (UUID TEXT NOT NULL PRIMARY KEY, -- no AUTOINCREMENT: uuids sync\n BODY TEXT)",
    ]);
    let schema = one_table(
        0,
        "NOTES",
        Some(&["UUID", "BODY"]),
        &[conflict("UUID", "Text"), field("BODY", "Text")],
    );
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["NOTES"], &schema).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Composite keys ("不支持将含有复合键的表设置为分布式表").
// ---------------------------------------------------------------------------------------------

const COMPOSITE: &str =
    "CREATE TABLE PAIRS (A TEXT NOT NULL, B TEXT NOT NULL, V TEXT, PRIMARY KEY (A, B))";

#[test]
fn composite_key_is_refused_in_single_version_mode() {
    let (_dir, store) = store_with(&[COMPOSITE]);
    let schema = one_table(
        0,
        "PAIRS",
        Some(&["A", "B", "V"]),
        &[
            conflict("A", "Text"),
            field("B", "Text"),
            field("V", "Text"),
        ],
    );
    let checked = store.check_sync_schema(&schema).unwrap();
    assert_eq!(problem(&checked, Rule::CompositeKey).code(), 17030020);
    let err = set_single(&store, &["PAIRS"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030020);
    assert!(
        schema_problems(&err)
            .iter()
            .any(|p| p.rule == Rule::CompositeKey)
    );
    assert_nothing_distributed(&store, "PAIRS", &bucket! { "A" => "a", "B" => "b" });
}

#[test]
fn composite_key_is_refused_in_device_collaboration_mode() {
    let (_dir, store) = store_with(&[COMPOSITE]);
    let err = set_collab(&store, &["PAIRS"]).unwrap_err();
    assert_eq!(err.code(), 17030020);
    assert!(
        schema_problems(&err)
            .iter()
            .any(|p| p.rule == Rule::CompositeKey && p.table == "PAIRS")
    );
    assert_nothing_distributed(&store, "PAIRS", &bucket! { "A" => "a", "B" => "b" });
}

// ---------------------------------------------------------------------------------------------
// check_sync_schema and how problems read.
// ---------------------------------------------------------------------------------------------

#[test]
fn check_changes_nothing() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV, EMPLOYEE2_SV]);
    let schema = parse(crate::seed_examples::SEED_CORRECT);
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn check_reports_every_table_errors_first() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV, EMPLOYEE2_SV]);
    let schema = schema(
        0,
        &[
            // A warning only (AGE not in fields).
            table_json(
                "EMPLOYEE",
                Some(&["NAME", "AGE"]),
                &[conflict("NAME", "Text")],
            ),
            // An error only (unknown type).
            table_json(
                "EMPLOYEE2",
                Some(&["NAME", "AGE"]),
                &[conflict("NAME", "Text"), field("AGE", "Number")],
            ),
        ],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    assert_eq!(
        rules(&problems),
        [Rule::UnknownType, Rule::FieldNotInFields]
    );
    assert_eq!(problems[0].table, "EMPLOYEE2");
    assert_eq!(problems[0].severity, Severity::Error);
    assert_eq!(problems[1].table, "EMPLOYEE");
    assert_eq!(problems[1].severity, Severity::Warning);

    // EMPLOYEE alone is fine (its warning does not stop it); both together are not.
    let err = set_single(&store, &["EMPLOYEE", "EMPLOYEE2"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030018);
    assert!(store.distributed_tables().unwrap().is_empty());
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
}

#[test]
fn error_code_is_the_first_error_even_after_a_warning() {
    // One table with a warning (AGE not in fields) and an error (an unknown type): the call
    // fails with the error's code, and the warning is among the problems.
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("SALARY", "Money")],
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030018);
    let problems = schema_problems(&err);
    assert!(
        problems
            .iter()
            .any(|p| p.rule == Rule::FieldNotInFields && p.severity == Severity::Warning)
    );
}

fn expected_line(p: &SchemaProblem) -> String {
    let place = match &p.column {
        Some(c) => format!("{}.{c}", p.table),
        None => p.table.clone(),
    };
    match p.severity {
        Severity::Error => format!("error[{}] {place}: {}", p.code(), p.message),
        Severity::Warning => format!("warning: {place}: {}", p.message),
    }
}

#[test]
fn problem_lines_read_exactly() {
    let (_dir, store) = store_with(&[EMPLOYEE_DC, EMPLOYEE2_SV]);
    // An error about a column: NAME is not UNIQUE.
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), field("AGE", "Integer")],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    let p = problem(&problems, Rule::ConflictColumnNotUnique);
    assert_eq!(
        p.to_string(),
        format!("error[17030004] EMPLOYEE.NAME: {}", p.message)
    );
    assert_eq!(p.to_string(), expected_line(p));
    assert!(!p.message.is_empty());

    // An error about the table: two conflict columns.
    let schema = one_table(
        0,
        "EMPLOYEE2",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text"), conflict("AGE", "Integer")],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    let p = problem(&problems, Rule::MultipleConflictColumns);
    assert_eq!(p.column, None);
    assert_eq!(
        p.to_string(),
        format!("error[17030002] EMPLOYEE2: {}", p.message)
    );

    // A warning.
    let schema = one_table(
        0,
        "EMPLOYEE2",
        Some(&["NAME", "AGE"]),
        &[conflict("NAME", "Text")],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    let p = problem(&problems, Rule::FieldNotInFields);
    assert_eq!(
        p.to_string(),
        format!("warning: EMPLOYEE2.AGE: {}", p.message)
    );
    assert_eq!(
        p.to_string(),
        "warning: EMPLOYEE2.AGE: AGE is in deviceSyncFields but not in fields, so it does not sync"
    );
}

#[test]
fn every_problem_line_has_the_format() {
    // All the problems of a thoroughly wrong schema, each as its line.
    let (_dir, store) = store_with(&[
        "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER NOT NULL UNIQUE, SALARY REAL, CODES BLOB)",
    ]);
    let schema = one_table(
        0,
        "EMPLOYEE",
        Some(&["ID", "NAMe", "SALARY"]),
        &[
            field("ID", "Integer"),
            conflict("NAME", "Text"),
            field("AGE", "Int"),
        ],
    );
    let problems = store.check_sync_schema(&schema).unwrap();
    assert!(problems.len() >= 5, "{problems:#?}");
    for p in &problems {
        assert_eq!(p.to_string(), expected_line(p));
        assert!(p.to_string().starts_with(&match p.severity {
            Severity::Error => format!("error[{}] EMPLOYEE", p.code()),
            Severity::Warning => "warning: EMPLOYEE".to_owned(),
        }));
    }
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    let Error::SyncSchema { problems } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(err.code(), problems[0].code());
    assert_eq!(
        err.to_string(),
        format!("sync schema rejected: {}", problems[0])
    );
}
