//! Seed 002, "schema约束与示意": every wrong example schema is refused with its own rule, and
//! the seed's correct schema (and the device-collaboration example) is accepted. The schemas
//! are the seed's, verbatim; the CREATE TABLE is the seed's where it gives one, adapted only
//! where the seed's own table would break a second, unrelated rule (noted at each test).

use peerlite::schema::{Rule, Severity};
use peerlite::{RdbPredicates, Value, bucket};
use peerlite_testkit::all_rows;

use crate::common::*;

/// The seed's full example: EMPLOYEE (auto-increment key, NAME resolves conflicts) and
/// EMPLOYEE2 (NAME is the key).
pub const SEED_CORRECT: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME", "AGE", "SALARY", "CODES"],
          "fields": [
            {"columnName": "ID", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": true},
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": false},
            {"columnName": "SALARY", "type": "Float", "primaryKey": false, "notNull": false, "autoIncrement": false},
            {"columnName": "CODES", "type": "Blob", "primaryKey": false, "notNull": false, "autoIncrement": false}
          ]
        },
        {
          "tableName": "EMPLOYEE2",
          "deviceSyncFields": ["NAME", "AGE", "SALARY", "CODES"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": false},
            {"columnName": "SALARY", "type": "Float", "primaryKey": false, "notNull": false, "autoIncrement": false},
            {"columnName": "CODES", "type": "Blob", "primaryKey": false, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

/// The seed's two-column schema (NAME resolves conflicts, NAME and AGE sync), at `version`.
/// It is the "old" schema of the conflict-column-change and sync-column-removal examples.
pub fn name_age_v(version: i64) -> String {
    format!(
        r#"{{
  "dbSchema": [
    {{
      "version": {version},
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {{
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME", "AGE"],
          "fields": [
            {{"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false}},
            {{"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": false}}
          ]
        }}
      ]
    }}
  ]
}}"#
    )
}

/// The seed's schema syncing only NAME (AGE described but not synced), at `version`.
pub fn name_only_v(version: i64) -> String {
    format!(
        r#"{{
  "dbSchema": [
    {{
      "version": {version},
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {{
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME"],
          "fields": [
            {{"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false}},
            {{"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": false}}
          ]
        }}
      ]
    }}
  ]
}}"#
    )
}

// ---------------------------------------------------------------------------------------------
// The correct examples.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_correct_schema_is_accepted_and_rows_are_captured() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV, EMPLOYEE2_SV]);
    // A row written before the tables are distributed syncs too.
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "before", "AGE" => 1 })
        .unwrap();
    let schema = parse(SEED_CORRECT);
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE", "EMPLOYEE2"], &schema).unwrap();

    let employee = meta(&store, "EMPLOYEE");
    assert_eq!(
        employee.mode,
        peerlite::changes::DistributedTableType::SingleVersion
    );
    assert_eq!(employee.identity, "NAME");
    assert_eq!(employee.columns, ["NAME", "AGE", "SALARY", "CODES"]);
    assert!(
        !employee.columns.contains(&"ID".to_owned()),
        "ID never syncs"
    );
    assert_eq!(employee.schema_version, 0);
    let employee2 = meta(&store, "EMPLOYEE2");
    assert_eq!(employee2.identity, "NAME");
    assert_eq!(employee2.columns, ["NAME", "AGE", "SALARY", "CODES"]);

    // The seed's insertSync.
    store
        .insert(
            "EMPLOYEE",
            &bucket! { "NAME" => "sync_me", "AGE" => 18, "SALARY" => 666 },
        )
        .unwrap();
    store
        .insert(
            "EMPLOYEE2",
            &bucket! { "NAME" => "sync_me_too", "AGE" => 19, "CODES" => vec![1u8, 2, 3, 4, 5] },
        )
        .unwrap();
    let changes = store.changes(Some("EMPLOYEE"), 0).unwrap();
    let keys: Vec<&Value> = changes.iter().map(|c| &c.key).collect();
    assert_eq!(
        keys,
        [&Value::from("before"), &Value::from("sync_me")],
        "rows are identified by the conflict column, not by ID"
    );
    assert!(changes.iter().all(|c| c.origin == "phone" && !c.tombstone));
    let c2 = store.changes(Some("EMPLOYEE2"), 0).unwrap();
    assert_eq!(c2.len(), 1);
    assert_eq!(c2[0].key, Value::from("sync_me_too"));
    assert!(c2[0].seq > changes[1].seq);

    // An update of a synced column is captured as a column register.
    store
        .update(
            &bucket! { "SALARY" => 777.5 },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "sync_me"),
        )
        .unwrap();
    let c = change_of(&store, "EMPLOYEE", "sync_me");
    assert_eq!(c.columns.len(), 1);
    assert_eq!(c.columns[0].0, "SALARY");
    assert_eq!(c.columns[0].2, "phone");
}

#[test]
fn seed_device_collaboration_example_needs_no_schema() {
    let (_dir, store) = store_with(&[EMPLOYEE_DC]);
    set_collab(&store, &["EMPLOYEE"]).unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(
        m.mode,
        peerlite::changes::DistributedTableType::DeviceCollaboration
    );
    assert_eq!(m.schema, None);
    store
        .insert(
            "EMPLOYEE",
            &bucket! { "NAME" => "sync_me", "AGE" => 18, "SALARY" => 666 },
        )
        .unwrap();
    assert_eq!(store.changes(Some("EMPLOYEE"), 0).unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// "不支持解冲突列变化": the conflict column changes from NAME to AGE on upgrade.
// ---------------------------------------------------------------------------------------------

const SEED_CONFLICT_CHANGED_V1: &str = r#"{
  "dbSchema": [
    {
      "version": 1,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME", "AGE"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": false, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": true, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_conflict_column_cannot_change_on_upgrade() {
    // The seed gives no table here; AGE is made UNIQUE (and its values non-NULL) so that AGE
    // would be a valid conflict column on its own: only the change is wrong.
    let (_dir, store) = store_with(&[
        "CREATE TABLE EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER UNIQUE, SALARY REAL, CODES BLOB)",
    ]);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    set_single(&store, &["EMPLOYEE"], &parse(&name_age_v(0))).unwrap();
    let before = meta(&store, "EMPLOYEE");

    let upgraded = parse(SEED_CONFLICT_CHANGED_V1);
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &upgraded,
        Rule::ConflictColumnChanged,
    );
    assert_eq!(error_rules(&problems), [Rule::ConflictColumnChanged]);
    let err = set_single(&store, &["EMPLOYEE"], &upgraded).unwrap_err();
    assert_eq!(err.code(), 17030003);

    // The table keeps syncing as before, by NAME.
    let after = meta(&store, "EMPLOYEE");
    assert_eq!(after, before);
    assert_eq!(after.identity, "NAME");
    assert_eq!(after.schema_version, 0);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Tom", "AGE" => 25 })
        .unwrap();
    change_of(&store, "EMPLOYEE", "Tom");
}

// ---------------------------------------------------------------------------------------------
// "解冲突列只能有一个": NAME and AGE both have primaryKey: true.
// ---------------------------------------------------------------------------------------------

const SEED_TWO_CONFLICT_COLUMNS: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME", "AGE"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": true, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_only_one_conflict_column() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = parse(SEED_TWO_CONFLICT_COLUMNS);
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &schema,
        Rule::MultipleConflictColumns,
    );
    assert_eq!(error_rules(&problems), [Rule::MultipleConflictColumns]);
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030002);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "同步列必须存在表中": "NAMe" is not the table's "NAME".
// ---------------------------------------------------------------------------------------------

const SEED_SYNC_COLUMN_CASE: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAMe", "AGE"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_sync_column_must_exist_case_sensitively() {
    // The seed's table has NAME without UNIQUE; it is made UNIQUE here so that NAME is a valid
    // conflict column. (NAME itself then does not sync, which the schema also implies.)
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = parse(SEED_SYNC_COLUMN_CASE);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::SyncColumnMissing);
    let p = problem(&problems, Rule::SyncColumnMissing);
    assert_eq!(p.table, "EMPLOYEE");
    assert_eq!(p.column.as_deref(), Some("NAMe"));
    assert_eq!(
        problems[0].rule,
        Rule::SyncColumnMissing,
        "the missing column is the first error"
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030006);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "schema有变化时,version需要增加": AGE is added to the sync columns at the same version 0.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_changed_schema_needs_a_higher_version() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    set_single(&store, &["EMPLOYEE"], &parse(&name_only_v(0))).unwrap();
    assert_eq!(meta(&store, "EMPLOYEE").columns, ["NAME"]);

    // The seed's "upgraded" schema is name_age_v(0): AGE now syncs, version still 0.
    let same_version = parse(&name_age_v(0));
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &same_version,
        Rule::VersionNotIncreased,
    );
    assert_eq!(error_rules(&problems), [Rule::VersionNotIncreased]);
    let err = set_single(&store, &["EMPLOYEE"], &same_version).unwrap_err();
    assert_eq!(err.code(), 17030009);
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME"], "AGE did not start syncing");
    assert_eq!(m.schema_version, 0);

    // With the version raised, the same change is accepted.
    let v1 = parse(&name_age_v(1));
    assert_eq!(store.check_sync_schema(&v1).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &v1).unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME", "AGE"]);
    assert_eq!(m.schema_version, 1);
}

// ---------------------------------------------------------------------------------------------
// "单版本表模式下,表中所有UNIQUE列必须同步": AGE is UNIQUE but does not sync.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_every_unique_column_must_sync() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE IF NOT EXISTS EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER UNIQUE, SALARY REAL, CODES BLOB)",
    ]);
    let schema = parse(&name_only_v(0));
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::UniqueColumnNotSynced);
    assert_eq!(error_rules(&problems), [Rule::UniqueColumnNotSynced]);
    assert_eq!(
        problem(&problems, Rule::UniqueColumnNotSynced)
            .column
            .as_deref(),
        Some("AGE")
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030010);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x", "AGE" => 1 });
}

// ---------------------------------------------------------------------------------------------
// "自增表下,不支持指定非主键列解冲突又同步主键": NAME resolves conflicts, yet ID syncs.
// ---------------------------------------------------------------------------------------------

const SEED_AUTOINC_SYNCED_NAME_CONFLICT: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["ID", "NAME" ],
          "fields": [
            {"columnName": "ID", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": true},
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_auto_increment_key_cannot_sync_beside_another_conflict_column() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = parse(SEED_AUTOINC_SYNCED_NAME_CONFLICT);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::AutoIncrementSynced);
    assert_eq!(error_rules(&problems), [Rule::AutoIncrementSynced]);
    assert_eq!(
        problem(&problems, Rule::AutoIncrementSynced)
            .column
            .as_deref(),
        Some("ID")
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030013);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "schema版本升级时,指定同步列只能新增不能减少": AGE stops syncing at version 1.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_sync_columns_cannot_be_removed_on_upgrade() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    set_single(&store, &["EMPLOYEE"], &parse(&name_age_v(0))).unwrap();

    let upgraded = parse(&name_only_v(1));
    let problems = assert_rejected(&store, &["EMPLOYEE"], &upgraded, Rule::SyncColumnsRemoved);
    assert_eq!(error_rules(&problems), [Rule::SyncColumnsRemoved]);
    assert_eq!(
        problem(&problems, Rule::SyncColumnsRemoved)
            .column
            .as_deref(),
        Some("AGE")
    );
    let err = set_single(&store, &["EMPLOYEE"], &upgraded).unwrap_err();
    assert_eq!(err.code(), 17030008);

    // AGE still syncs: an update of it is captured.
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME", "AGE"]);
    assert_eq!(m.schema_version, 0);
    store
        .update(
            &bucket! { "AGE" => 19 },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"),
        )
        .unwrap();
    let c = change_of(&store, "EMPLOYEE", "Lisa");
    assert_eq!(
        c.columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["AGE"]
    );
}

// ---------------------------------------------------------------------------------------------
// "同步列不能为空": no deviceSyncFields at all.
// ---------------------------------------------------------------------------------------------

const SEED_NO_SYNC_FIELDS: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_device_sync_fields_are_required() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = parse(SEED_NO_SYNC_FIELDS);
    assert!(
        schema.db_schema[0].tables[0].device_sync_fields.is_empty(),
        "a missing deviceSyncFields reads as empty"
    );
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::NoSyncColumns);
    assert_eq!(problems[0].rule, Rule::NoSyncColumns);
    assert_eq!(problems[0].column, None);
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030007);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "表中not null字段必须有默认值,否则要指定同步": AGE is NOT NULL without a default.
// ---------------------------------------------------------------------------------------------

const SEED_NOT_NULL_NOT_SYNCED: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": false, "notNull": true, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_not_null_column_without_default_must_sync() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE IF NOT EXISTS EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL UNIQUE, AGE INTEGER NOT NULL, SALARY REAL, CODES BLOB)",
    ]);
    let schema = parse(SEED_NOT_NULL_NOT_SYNCED);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::NotNullColumnNotSynced);
    assert_eq!(error_rules(&problems), [Rule::NotNullColumnNotSynced]);
    assert_eq!(
        problem(&problems, Rule::NotNullColumnNotSynced)
            .column
            .as_deref(),
        Some("AGE")
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030011);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x", "AGE" => 1 });
}

// ---------------------------------------------------------------------------------------------
// "无主键表不支持指定列同步,不支持配置单版本表模式": EMPLOYEE has no primary key.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_table_without_primary_key_cannot_be_single_version() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE IF NOT EXISTS EMPLOYEE (NAME TEXT NOT NULL UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB)",
    ]);
    let schema = parse(&name_only_v(0));
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::NoPrimaryKey);
    assert_eq!(error_rules(&problems), [Rule::NoPrimaryKey]);
    assert_eq!(problems[0].column, None);
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030012);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "主键为非自增,主键必须同步,且解冲突列必须为主键": NAME is the key, AGE resolves conflicts.
// ---------------------------------------------------------------------------------------------

const SEED_KEY_NOT_CONFLICT: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["AGE"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": false, "notNull": true, "autoIncrement": false},
            {"columnName": "AGE", "type": "Integer", "primaryKey": true, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_non_auto_increment_key_must_sync_and_resolve_conflicts() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE IF NOT EXISTS EMPLOYEE (NAME TEXT NOT NULL PRIMARY KEY, AGE INTEGER NOT NULL UNIQUE, SALARY REAL, CODES BLOB)",
    ]);
    let schema = parse(SEED_KEY_NOT_CONFLICT);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::KeyNotConflictColumn);
    // The example breaks both halves of the rule: NAME neither syncs nor resolves conflicts.
    let p = problem(&problems, Rule::KeyNotConflictColumn);
    assert_eq!(p.column.as_deref(), Some("NAME"));
    assert_eq!(
        problem(&problems, Rule::KeyNotSynced).column.as_deref(),
        Some("NAME")
    );
    assert!(
        !error_rules(&problems).contains(&Rule::ConflictColumnNotUnique),
        "AGE is UNIQUE: {problems:#?}"
    );
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x", "AGE" => 1 });
}

// ---------------------------------------------------------------------------------------------
// "配置解冲突列必须为UNIQUE属性": NAME is not UNIQUE.
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_conflict_column_must_be_unique() {
    let (_dir, store) = store_with(&[
        "CREATE TABLE IF NOT EXISTS EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT NOT NULL, AGE INTEGER, SALARY REAL, CODES BLOB)",
    ]);
    let schema = parse(&name_age_v(0));
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &schema,
        Rule::ConflictColumnNotUnique,
    );
    assert_eq!(error_rules(&problems), [Rule::ConflictColumnNotUnique]);
    assert_eq!(
        problem(&problems, Rule::ConflictColumnNotUnique)
            .column
            .as_deref(),
        Some("NAME")
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030004);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "deviceSyncFields中字段必须在fields中,否则该字段将不会同步": AGE is not in fields (a warning).
// ---------------------------------------------------------------------------------------------

const SEED_FIELD_NOT_IN_FIELDS: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME", "AGE"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": true, "notNull": true, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_sync_field_missing_from_fields_is_a_warning_and_does_not_sync() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = parse(SEED_FIELD_NOT_IN_FIELDS);
    let problems = store.check_sync_schema(&schema).unwrap();
    assert_eq!(rules(&problems), [Rule::FieldNotInFields]);
    let w = &problems[0];
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.code(), 17030017);
    assert_eq!(w.table, "EMPLOYEE");
    assert_eq!(w.column.as_deref(), Some("AGE"));

    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    let m = meta(&store, "EMPLOYEE");
    assert_eq!(m.columns, ["NAME"]);
    assert!(!m.columns.contains(&"AGE".to_owned()));

    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    let seq = change_of(&store, "EMPLOYEE", "Lisa").seq;
    // Writing AGE is not a change to sync.
    store
        .update(
            &bucket! { "AGE" => 19 },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"),
        )
        .unwrap();
    let c = change_of(&store, "EMPLOYEE", "Lisa");
    assert_eq!(c.seq, seq);
    assert!(c.columns.is_empty(), "{c:?}");
}

// ---------------------------------------------------------------------------------------------
// "自增主键不允许同步,若主键为自增,必须配置一个非主键列解冲突": ID syncs and resolves conflicts.
// ---------------------------------------------------------------------------------------------

const SEED_AUTOINC_CONFLICT: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["ID", "NAME"],
          "fields": [
            {"columnName": "ID", "type": "Integer", "primaryKey": true, "notNull": false, "autoIncrement": true},
            {"columnName": "NAME", "type": "Text", "primaryKey": false, "notNull": true, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

#[test]
fn seed_auto_increment_key_cannot_sync_or_resolve_conflicts() {
    let (_dir, store) = store_with(&[EMPLOYEE_SV]);
    let schema = parse(SEED_AUTOINC_CONFLICT);
    let problems = assert_rejected(
        &store,
        &["EMPLOYEE"],
        &schema,
        Rule::AutoIncrementConflictColumn,
    );
    assert_eq!(
        error_rules(&problems),
        [Rule::AutoIncrementConflictColumn, Rule::AutoIncrementSynced]
    );
    assert_eq!(
        problem(&problems, Rule::AutoIncrementConflictColumn)
            .column
            .as_deref(),
        Some("ID")
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030014);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

// ---------------------------------------------------------------------------------------------
// "指定解冲突列中的值不能出现null值".
// ---------------------------------------------------------------------------------------------

/// The seed's schema for this example, verbatim: NAME syncs, but `primaryKey` is false.
const SEED_NULLS_AS_WRITTEN: &str = r#"{
  "dbSchema": [
    {
      "version": 0,
      "bundleName": "com.example.rdbDataSync",
      "dbName": "RdbTest",
      "tables": [
        {
          "tableName": "EMPLOYEE",
          "deviceSyncFields": ["NAME"],
          "fields": [
            {"columnName": "NAME", "type": "Text", "primaryKey": false, "notNull": false, "autoIncrement": false}
          ]
        }
      ]
    }
  ]
}"#;

/// The seed's table for this example: NAME is UNIQUE but may be NULL.
const NULLABLE_NAME: &str = "CREATE TABLE IF NOT EXISTS EMPLOYEE (ID INTEGER PRIMARY KEY AUTOINCREMENT, NAME TEXT UNIQUE, AGE INTEGER, SALARY REAL, CODES BLOB)";

/// The seed's schema for this example with NAME made the conflict column, as the text around
/// it intends ("指定解冲突列").
fn nulls_schema() -> peerlite::schema::SyncSchema {
    parse(&SEED_NULLS_AS_WRITTEN.replace(r#""primaryKey": false"#, r#""primaryKey": true"#))
}

/// The seed's valueBucket: NAME is NULL.
fn seed_null_row() -> peerlite::ValuesBucket {
    bucket! {
        "NAME" => Value::Null,
        "AGE" => 25,
        "SALARY" => 23456.7,
        "CODES" => vec![1u8, 2, 3, 4, 5],
    }
}

#[test]
fn seed_null_example_as_written_names_no_conflict_column() {
    // Taken literally the seed's schema marks no conflict column, which an auto-increment
    // table needs ("若是自增表,该字段为必填字段").
    let (_dir, store) = store_with(&[NULLABLE_NAME]);
    let schema = parse(SEED_NULLS_AS_WRITTEN);
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::NoConflictColumn);
    assert_eq!(error_rules(&problems), [Rule::NoConflictColumn]);
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030001);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "x" });
}

#[test]
fn seed_existing_null_in_conflict_column_fails_set_distributed_tables() {
    let (_dir, store) = store_with(&[NULLABLE_NAME]);
    store.insert("EMPLOYEE", &seed_null_row()).unwrap();
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    let schema = nulls_schema();
    let problems = assert_rejected(&store, &["EMPLOYEE"], &schema, Rule::ConflictColumnNulls);
    assert_eq!(error_rules(&problems), [Rule::ConflictColumnNulls]);
    assert_eq!(
        problem(&problems, Rule::ConflictColumnNulls)
            .column
            .as_deref(),
        Some("NAME")
    );
    let err = set_single(&store, &["EMPLOYEE"], &schema).unwrap_err();
    assert_eq!(err.code(), 17030005);
    assert_nothing_distributed(&store, "EMPLOYEE", &bucket! { "NAME" => "Tom" });

    // Once the NULL is gone, the same schema is accepted and every row syncs.
    store
        .execute("DELETE FROM EMPLOYEE WHERE NAME IS NULL", &[])
        .unwrap();
    assert_eq!(store.check_sync_schema(&schema).unwrap(), vec![]);
    set_single(&store, &["EMPLOYEE"], &schema).unwrap();
    assert_eq!(store.changes(Some("EMPLOYEE"), 0).unwrap().len(), 2);
}

#[test]
fn seed_new_null_in_conflict_column_fails_the_write() {
    let (_dir, store) = store_with(&[NULLABLE_NAME]);
    set_single(&store, &["EMPLOYEE"], &nulls_schema()).unwrap();
    store
        .insert("EMPLOYEE", &bucket! { "NAME" => "Lisa", "AGE" => 18 })
        .unwrap();
    let rows_before = all_rows(&store, "SELECT * FROM EMPLOYEE ORDER BY ID", &[]).unwrap();
    let changes_before = store.changes(None, 0).unwrap();

    // The seed's insert with NAME = null.
    let err = store.insert("EMPLOYEE", &seed_null_row()).unwrap_err();
    assert_eq!(err.code(), 17030005, "{err:?}");
    match &err {
        peerlite::Error::NullConflictColumn { table, column } => {
            assert_eq!(table, "EMPLOYEE");
            assert_eq!(column, "NAME");
        }
        other => panic!("expected NullConflictColumn, got {other:?}"),
    }
    // An insert that leaves NAME out is a NULL too.
    let err = store
        .insert("EMPLOYEE", &bucket! { "AGE" => 30 })
        .unwrap_err();
    assert_eq!(err.code(), 17030005, "{err:?}");

    // An update to NULL.
    let err = store
        .update(
            &bucket! { "NAME" => Value::Null },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"),
        )
        .unwrap_err();
    assert_eq!(err.code(), 17030005, "{err:?}");
    assert!(matches!(err, peerlite::Error::NullConflictColumn { .. }));
    // The same through raw SQL.
    let err = store
        .execute("UPDATE EMPLOYEE SET NAME = NULL, AGE = 99", &[])
        .unwrap_err();
    assert_eq!(err.code(), 17030005, "{err:?}");

    assert_eq!(
        all_rows(&store, "SELECT * FROM EMPLOYEE ORDER BY ID", &[]).unwrap(),
        rows_before,
        "the failed writes left the row as it was"
    );
    assert_eq!(store.changes(None, 0).unwrap(), changes_before);

    // Non-NULL writes still work.
    store
        .update(
            &bucket! { "AGE" => 19 },
            &RdbPredicates::new("EMPLOYEE").equal_to("NAME", "Lisa"),
        )
        .unwrap();
    assert_eq!(count(&store, "EMPLOYEE"), 1);
}
