//! What SQL from the caller may not do: the rules the writer's authorizer applies.
//!
//! peerlite keeps its own objects in the database beside the app's: tables (`peerlite_meta`,
//! the registry of distributed tables, one clock per distributed table, the key-value store's
//! `peerlite_kv`, …), the capture triggers `peerlite_<tid>_…` and a few connection settings.
//! One `DROP TABLE` or `PRAGMA writable_schema` from the app would brick the store or silently
//! stop capture, so caller SQL — `execute`, `execute_script`, migrations, the table-name API —
//! is judged while SQLite prepares it:
//!
//! - no write, create, drop, alter, index or trigger on a `peerlite_*` or `sqlite_*` object, in
//!   any schema, however the name is spelled (SQLite hands the authorizer the resolved name);
//! - no trigger or index *named* `peerlite_…`; no trigger whose body writes those objects
//!   (refused when it is created, and again whenever a statement would fire it);
//! - distributed tables keep their name and columns: `DROP TABLE`, `RENAME TO`, `RENAME
//!   COLUMN` and `DROP COLUMN` are refused, `ADD COLUMN` works; no table, view or temporary
//!   table may take a distributed table's name (a temporary one would shadow it);
//! - pragmas that break what peerlite relies on (see [`pragma_refusal`]) are refused, and so is
//!   `ATTACH` (the attachment would outlive the statement on peerlite's writer).
//!
//! Reading everything stays allowed. peerlite's own statements, its triggers firing and sync
//! applying rows are not judged (the writer knows which statements are the caller's). Some
//! decisions need the statement's text or the registry, which the authorizer cannot read while
//! SQLite prepares; those are [`Pending`] and settled by [`settle`] after the statement is
//! prepared and before it runs, inside the transaction that holds the write lock.

pub(crate) mod text;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext};

/// Why a caller's statement was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `BEGIN` / `COMMIT` / `ROLLBACK` inside peerlite's transaction.
    Control,
    /// A write to another device's rows.
    DeviceTable(String),
    /// peerlite's own objects or settings.
    Protected {
        /// What the statement would do to what, e.g. "dropping table peerlite_meta".
        what: String,
        /// Why that is refused.
        reason: String,
    },
}

impl Refusal {
    fn protected(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Refusal::Protected {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// A decision the authorizer leaves until the statement is prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// A top-level write to a `sqlite_*` table: SQLite's own bookkeeping when the statement is
    /// DDL (it rewrites `sqlite_schema`, `sqlite_sequence`, `sqlite_stat1` itself), the
    /// caller's otherwise.
    WritesSqlite(String),
    /// A table or view is dropped: refused when it is distributed.
    Drop(String),
    /// A table or view is created (`temp`: in the temporary schema, where it would shadow
    /// the main one): refused under a distributed name, unless that table exists and the
    /// statement is a harmless `CREATE … IF NOT EXISTS` (or fails on its own).
    Create { name: String, temp: bool },
    /// `ALTER TABLE`; `drops_column` when the authorizer said so (DROP COLUMN names its column).
    Alter { table: String, drops_column: bool },
    /// `CREATE TRIGGER`: its body must not write protected objects.
    Trigger(String),
}

/// The authorizer's answer for one action of a judged statement.
#[derive(Debug)]
pub(crate) enum Verdict {
    Allow,
    Deny(Refusal),
    Defer(Pending),
}

fn has_prefix(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// A name in peerlite's namespace (`peerlite_…`, any case).
pub(crate) fn is_peerlite_name(name: &str) -> bool {
    has_prefix(name, "peerlite_")
}

/// A name in SQLite's namespace (`sqlite_…`, any case).
pub(crate) fn is_sqlite_name(name: &str) -> bool {
    has_prefix(name, "sqlite_")
}

/// peerlite's or SQLite's own object.
pub(crate) fn is_protected(name: &str) -> bool {
    is_peerlite_name(name) || is_sqlite_name(name)
}

const OWN: &str = "it is peerlite's own and changes only through peerlite";
const SQLITES: &str = "it is SQLite's own bookkeeping";

fn owner(name: &str) -> &'static str {
    if is_peerlite_name(name) { OWN } else { SQLITES }
}

/// The refusal of `doing` an index or trigger `name` of `table`, if any: for its own name
/// when `name_refused`, else for its table when that is protected.
fn on_table(
    doing: &str,
    name: &str,
    name_refused: bool,
    preposition: &str,
    table: &str,
) -> Option<Verdict> {
    let (what, whose) = if name_refused {
        (format!("{doing} {name}"), name)
    } else if is_protected(table) {
        (format!("{doing} {name} {preposition} {table}"), table)
    } else {
        return None;
    };
    Some(Verdict::Deny(Refusal::protected(what, owner(whose))))
}

/// Judges one action of a caller's statement (`in_trigger`: it comes from the body of a
/// trigger or view the statement fires).
pub(crate) fn judge(ctx: &AuthContext<'_>, in_trigger: bool) -> Verdict {
    use AuthAction as A;
    let deny = |what: String, name: &str| Verdict::Deny(Refusal::protected(what, owner(name)));
    match ctx.action {
        A::Insert { table_name } | A::Delete { table_name } | A::Update { table_name, .. } => {
            if is_peerlite_name(table_name) || (in_trigger && is_sqlite_name(table_name)) {
                deny(format!("writing {table_name}"), table_name)
            } else if is_sqlite_name(table_name) {
                Verdict::Defer(Pending::WritesSqlite(table_name.to_owned()))
            } else {
                Verdict::Allow
            }
        }
        A::CreateTable { table_name: name }
        | A::CreateTempTable { table_name: name }
        | A::CreateView { view_name: name }
        | A::CreateTempView { view_name: name } => {
            if is_peerlite_name(name) {
                deny(format!("creating {name}"), name)
            } else {
                // `sqlite_stat1` is created by ANALYZE itself; SQLite refuses the name otherwise.
                Verdict::Defer(Pending::Create {
                    name: name.to_owned(),
                    temp: matches!(
                        ctx.action,
                        A::CreateTempTable { .. } | A::CreateTempView { .. }
                    ) || ctx
                        .database_name
                        .is_some_and(|d| d.eq_ignore_ascii_case("temp")),
                })
            }
        }
        A::CreateIndex {
            index_name: name,
            table_name: table,
        }
        | A::CreateTempIndex {
            index_name: name,
            table_name: table,
        } => on_table("creating index", name, is_peerlite_name(name), "on", table)
            .unwrap_or(Verdict::Allow),
        A::CreateTrigger {
            trigger_name: name,
            table_name: table,
        }
        | A::CreateTempTrigger {
            trigger_name: name,
            table_name: table,
        } => on_table(
            "creating trigger",
            name,
            is_peerlite_name(name),
            "on",
            table,
        )
        .unwrap_or_else(|| Verdict::Defer(Pending::Trigger(name.to_owned()))),
        A::DropTable { table_name: name }
        | A::DropTempTable { table_name: name }
        | A::DropView { view_name: name }
        | A::DropTempView { view_name: name } => {
            if is_protected(name) {
                deny(format!("dropping {name}"), name)
            } else {
                Verdict::Defer(Pending::Drop(name.to_owned()))
            }
        }
        A::DropIndex {
            index_name: name,
            table_name: table,
        }
        | A::DropTempIndex {
            index_name: name,
            table_name: table,
        }
        | A::DropTrigger {
            trigger_name: name,
            table_name: table,
        }
        | A::DropTempTrigger {
            trigger_name: name,
            table_name: table,
        } if is_peerlite_name(name) && !is_protected(table) => {
            // SQLite drops a table's triggers first: this is how `DROP TABLE` of a
            // distributed table shows itself, so say that.
            Verdict::Deny(Refusal::protected(
                format!("dropping {name}, a capture trigger of {table}"),
                "a distributed table and its capture triggers stay (to remove its rows, delete them: the deletes sync)",
            ))
        }
        A::DropIndex {
            index_name: name,
            table_name: table,
        }
        | A::DropTempIndex {
            index_name: name,
            table_name: table,
        }
        | A::DropTrigger {
            trigger_name: name,
            table_name: table,
        }
        | A::DropTempTrigger {
            trigger_name: name,
            table_name: table,
        } => on_table("dropping", name, is_protected(name), "of", table).unwrap_or(Verdict::Allow),
        A::AlterTable { table_name, .. } => {
            if is_protected(table_name) {
                deny(format!("altering {table_name}"), table_name)
            } else {
                Verdict::Defer(Pending::Alter {
                    table: table_name.to_owned(),
                    // SQLite passes the dropped column where the database name usually goes.
                    drops_column: ctx.database_name.is_some(),
                })
            }
        }
        A::CreateVtable { table_name, .. } | A::DropVtable { table_name, .. }
            if is_protected(table_name) =>
        {
            deny(format!("creating or dropping {table_name}"), table_name)
        }
        // An attached database stays on peerlite's writer after the statement, and the store's
        // own file attached again under another name locks the store out of its next
        // transaction (and names peerlite's tables in a schema of its own).
        A::Attach { filename } => Verdict::Deny(Refusal::protected(
            format!("attaching {filename:?}"),
            "an attached database would stay on peerlite's writer connection; open the other file as a store of its own",
        )),
        A::Pragma {
            pragma_name,
            pragma_value,
        } => match pragma_refusal(pragma_name, pragma_value) {
            Some(reason) => Verdict::Deny(Refusal::protected(
                match pragma_value {
                    Some(v) => format!("PRAGMA {pragma_name} = {v}"),
                    None => format!("PRAGMA {pragma_name}"),
                },
                reason,
            )),
            None => Verdict::Allow,
        },
        _ => Verdict::Allow,
    }
}

/// Why peerlite refuses `PRAGMA name [= value]` from the caller, if it does. Queries (no
/// value) are allowed except `writable_schema`; settings are refused when they would outlive
/// the statement on peerlite's writer and break what it relies on.
pub(crate) fn pragma_refusal(name: &str, value: Option<&str>) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let setting = value.is_some();
    let is = |v: &str| value.is_some_and(|x| x.eq_ignore_ascii_case(v));
    Some(match name.as_str() {
        "writable_schema" => {
            "it lets SQL rewrite the schema, peerlite's tables and triggers included, past SQLite's checks"
        }
        "schema_version" if setting => "setting the schema cookie corrupts the database",
        "journal_mode" if setting && !is("wal") => {
            "peerlite keeps the database in WAL mode: its readers, online backups and checkpoints rely on it"
        }
        "locking_mode" if setting && !is("normal") => {
            "an exclusive lock would shut out peerlite's readers, backups and checkpoints"
        }
        "recursive_triggers" if setting => {
            "peerlite sets it: on while the database has distributed tables, so that rows a REPLACE removes are captured as deletes"
        }
        "trusted_schema" if setting => {
            "peerlite's capture triggers call its SQL functions, which an untrusted schema may not"
        }
        "wal_autocheckpoint" if setting => {
            "peerlite checkpoints the WAL itself; this would replace its checkpoint hook"
        }
        "query_only" if setting => {
            "peerlite writes its bookkeeping in every transaction; statements that only read never write"
        }
        "synchronous" if setting => {
            "durability is set when the store is opened, not by one statement"
        }
        "wal_checkpoint" => {
            "peerlite checkpoints the log on its own thread and at close; `peerlite checkpoint DB` empties it now"
        }
        "count_changes" if setting => "it would make peerlite's own writes return rows",
        "key" | "rekey" | "hexkey" | "hexrekey" | "textkey" | "textrekey" => {
            "the store's key is given when it is opened"
        }
        n if setting && (n.starts_with("cipher") || n.ends_with("kdf_iter")) => {
            "the store's encryption settings are fixed when it is opened"
        }
        _ => return None,
    })
}

/// Settles what the authorizer left pending for the statement `sql`, just prepared: returns
/// the refusal, if any. `schema_work` says whether the statement is DDL or ANALYZE (whose
/// writes to `sqlite_*` tables SQLite makes itself).
pub(crate) fn settle(
    conn: &Connection,
    sql: &str,
    pending: &[Pending],
    schema_work: bool,
) -> rusqlite::Result<Option<Refusal>> {
    for p in pending {
        let refusal = match p {
            Pending::WritesSqlite(table) if !schema_work => Some(Refusal::protected(
                format!("writing {table}"),
                SQLITES,
            )),
            Pending::WritesSqlite(_) => None,
            Pending::Drop(name) => distributed(conn, name)?.map(|t| {
                Refusal::protected(
                    format!("dropping {t}"),
                    format!("{t} is a distributed table: its clock, capture triggers and peers depend on it"),
                )
            }),
            Pending::Create { name, temp } => match distributed(conn, name)? {
                Some(t) if *temp || !exists_in_main(conn, &t)? => Some(Refusal::protected(
                    format!("creating {name}"),
                    format!("{t} is the name of a distributed table"),
                )),
                _ => None,
            },
            Pending::Alter {
                table,
                drops_column,
            } => alter_refusal(conn, sql, table, *drops_column)?,
            Pending::Trigger(name) => text::write_targets(sql)
                .into_iter()
                .find(|t| is_protected(t))
                .map(|t| {
                    Refusal::protected(
                        format!("creating trigger {name}, which writes {t}"),
                        owner(&t),
                    )
                }),
        };
        if refusal.is_some() {
            return Ok(refusal);
        }
    }
    Ok(None)
}

fn alter_refusal(
    conn: &Connection,
    sql: &str,
    table: &str,
    drops_column: bool,
) -> rusqlite::Result<Option<Refusal>> {
    let form = if drops_column {
        text::AlterForm::DropColumn
    } else {
        text::alter_form(sql)
    };
    if let text::AlterForm::RenameTable(to) = &form {
        if is_peerlite_name(to) {
            return Ok(Some(Refusal::protected(
                format!("renaming {table} to {to}"),
                "names starting with peerlite_ are peerlite's own",
            )));
        }
        if let Some(t) = distributed(conn, to)? {
            return Ok(Some(Refusal::protected(
                format!("renaming {table} to {to}"),
                format!("{t} is the name of a distributed table"),
            )));
        }
    }
    if form == text::AlterForm::AddColumn {
        return Ok(None);
    }
    Ok(distributed(conn, table)?.map(|t| {
        let what = match form {
            text::AlterForm::RenameTable(to) => format!("renaming {t} to {to}"),
            text::AlterForm::RenameColumn => format!("renaming a column of {t}"),
            text::AlterForm::DropColumn => format!("dropping a column of {t}"),
            _ => format!("altering {t}"),
        };
        Refusal::protected(
            what,
            format!(
                "{t} is a distributed table: it keeps its name and columns, which its capture triggers and its peers use (ADD COLUMN works)"
            ),
        )
    }))
}

fn exists_in_main(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.sqlite_schema WHERE name = ?1 COLLATE NOCASE)",
        [name],
        |r| r.get(0),
    )
}

/// The name under which `name` is registered as a local distributed table, if it is (names
/// match as SQLite matches them, ignoring ASCII case).
fn distributed(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    // The registry is `changes::registry`'s table; `store` reads it without depending on it.
    if !crate::store::schema::table_exists(conn, "peerlite_distributed")? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT name FROM main.peerlite_distributed WHERE base IS NULL AND name = ?1 COLLATE NOCASE",
        [name],
        |r| r.get(0),
    )
    .optional()
}

/// True when `sql` names (or may name) an object the rules protect, or is a pragma: such a
/// statement from the caller is always prepared afresh, never taken from the statement cache
/// that peerlite's own statements share, so the authorizer judges it every time. Any
/// reference to a `peerlite_*` or `sqlite_*` object spells that prefix: SQL has no escapes
/// inside identifiers.
pub(crate) fn needs_fresh_prepare(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("peerlite_") || lower.contains("sqlite_") || lower.contains("pragma")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pragmas_refused_and_allowed() {
        assert!(pragma_refusal("WRITABLE_SCHEMA", None).is_some());
        assert!(pragma_refusal("writable_schema", Some("0")).is_some());
        assert!(pragma_refusal("journal_mode", Some("delete")).is_some());
        assert!(pragma_refusal("journal_mode", Some("WAL")).is_none());
        assert!(pragma_refusal("journal_mode", None).is_none());
        assert!(pragma_refusal("schema_version", Some("7")).is_some());
        assert!(pragma_refusal("schema_version", None).is_none());
        assert!(pragma_refusal("rekey", Some("x")).is_some());
        assert!(pragma_refusal("cipher_page_size", Some("1024")).is_some());
        assert!(pragma_refusal("cipher_version", None).is_none());
        assert!(pragma_refusal("table_info", Some("t")).is_none());
        assert!(pragma_refusal("user_version", Some("3")).is_none());
        assert!(pragma_refusal("foreign_keys", Some("off")).is_none());
    }

    #[test]
    fn fresh_prepare_for_protected_names_and_pragmas() {
        assert!(needs_fresh_prepare("DELETE FROM PeerLite_meta"));
        assert!(needs_fresh_prepare(
            "update \"sqlite_sequence\" set seq = 0"
        ));
        assert!(needs_fresh_prepare("Pragma user_version"));
        assert!(!needs_fresh_prepare("INSERT INTO t(a) VALUES (?1)"));
    }
}
