//! The `hint:` line under an error: what to do next, in terms of this command line. The
//! library's own hints ([`peerlite::Error::hint`]) speak to programmers and may name library
//! functions a shell user cannot call; here every hint names `peerlite` commands and flags, and
//! looks at the error's cause, so a full disk during a migration is not told to fix the step.

use peerlite::Error;
// The rule lives in the testkit so that the end-to-end tests check the binary's hints by it.
use peerlite_testkit::names_no_library_function;

/// The hint for `err`, raised by the subcommand `command` (`sql`, `kv`, `migrate`, …): it
/// always names a `peerlite` command or flag.
pub fn for_error(err: &Error, command: &str) -> String {
    let hint = specific(err, command);
    if names_cli(&hint) {
        hint
    } else {
        format!("{hint} (`peerlite {command} --help`)")
    }
}

/// True when `hint` names a `peerlite` command or a flag.
fn names_cli(hint: &str) -> bool {
    hint.contains("`peerlite") || hint.contains(" --") || hint.contains("(--")
}

fn specific(err: &Error, command: &str) -> String {
    let db = if command == "kv" {
        "`peerlite kv STORE_DIR STORE_ID …`"
    } else {
        "DB"
    };
    match err {
        Error::InvalidArgument { message, .. } if message.contains("transaction control") => {
            "leave out BEGIN, COMMIT and ROLLBACK: `peerlite sql` runs all its statements in one transaction (SAVEPOINT and RELEASE work)".into()
        }
        Error::InvalidArgument { message, .. } if message.contains("no migrations were given") => {
            "give the migrations that lead to the store's version: `peerlite restore DB NAME --migrations DIR` (the NNNN_name.sql files `peerlite migrate` applies)".into()
        }
        Error::InvalidArgument { .. } => format!("check the arguments (`peerlite {command} --help`)"),
        Error::QueryRefused { reason, .. } if reason.contains("this device's own level") => {
            "this device's own level (set by `peerlite device init --level`, shown by `peerlite --json device id --home H`) does not admit the data's label: query it from a device whose own level does".into()
        }
        Error::UnknownTable { .. } => {
            "check the table name: `peerlite sql DB \"SELECT name FROM sqlite_schema WHERE type = 'table'\"` lists them".into()
        }
        Error::UnknownColumn { table, .. } => format!(
            "check the column name: `peerlite sql DB \"SELECT name FROM pragma_table_info('{table}')\"` lists them"
        ),
        Error::InvalidPath { reason, .. } if reason.contains("backup name") => {
            "give a plain file name as the backup NAME (no `/`, no `..`, at most 200 bytes), e.g. `peerlite backup DB nightly`; `peerlite backups DB` lists the names in use".into()
        }
        Error::InvalidPath { path, .. } if path.symlink_metadata().is_err() => {
            let creates = match command {
                "sql" | "migrate" => "this command creates the file, but its directory must exist",
                _ => "`peerlite sql DB …` and `peerlite migrate DB DIR` create a database; this command needs an existing one",
            };
            format!("check the path {}: nothing is there ({creates})", path.display())
        }
        Error::InvalidPath { .. } => format!(
            "check that the path is a database file in a directory you can write (`peerlite {command} --help`)"
        ),
        Error::Corrupted { kind, .. } => {
            let target = match kind {
                peerlite::StoreKind::KeyValue => "--kv STORE_DIR STORE_ID",
                _ => "DB",
            };
            // Never the command that just refused: `restore` mends what `repair` mends.
            let or_restore = if command == "restore" {
                String::new()
            } else {
                format!(", or `peerlite restore {target} NAME`")
            };
            format!(
                "run `peerlite repair {target}` to rebuild it from the newest verified backup (the damaged file is kept, readable rows are salvaged){or_restore}"
            )
        }
        Error::NotFound { what } if what.starts_with("key-value store") => {
            "check STORE_DIR and STORE_ID (`peerlite kv STORE_DIR STORE_ID put KEY VALUE` creates a store)".into()
        }
        Error::NotFound { .. } => {
            "check the key: `peerlite kv STORE_DIR STORE_ID list` shows the keys (`--prefix P` narrows them)".into()
        }
        Error::NotAQuery { .. } | Error::ReadOnly { .. } => {
            "this command only reads; change data with `peerlite sql DB SQL…`".into()
        }
        Error::WrongKey { .. } => {
            "give the key the store was created with (--key KEY or PEERLITE_KEY); a store created without a key is opened without one".into()
        }
        Error::ConfigChanged { .. } => {
            "a store's data label can be raised (`--level S1..S4`) but never lowered: leave `--level` out to open it at the label it holds".into()
        }
        Error::ReadOnlyUpgrade { .. } => "upgrade it with `peerlite migrate DB DIR`".into(),
        Error::Migration { source, .. } => migration_hint(source, command),
        Error::Downgrade { .. } => {
            "the database is newer than these migrations: use the newer migration directory, or add `NNNN_name.down.sql` files that lead back (`peerlite migrate DB DIR --dry-run` tries them)".into()
        }
        Error::ForeignKeyViolation { .. } => {
            "make the migration keep references valid; `peerlite sql DB \"PRAGMA foreign_key_check\"` shows the rows (nothing changed)".into()
        }
        Error::Io { source, .. } => io_hint(source),
        Error::BackupNotFound { .. } => format!(
            "`peerlite backups {}` lists the backups; give a name from it or a backup file's path",
            kv_or(command, db)
        ),
        Error::BackupInvalid { .. } => format!(
            "the backup is damaged; keep it for inspection and restore an older one (`peerlite backups {}` lists them)",
            kv_or(command, db)
        ),
        Error::BackupTooNew { .. } => {
            "upgrade the store first (`peerlite migrate DB DIR`), then restore".into()
        }
        Error::BackupOfAnotherStore { .. } => {
            "pick a backup of this database, or add --force to replace this database's data with it".into()
        }
        Error::Cancelled { .. } => format!("run `peerlite {command}` again to finish"),
        Error::ReservedBackupName { .. } => {
            "pick another NAME for `peerlite backup DB NAME`: `auto-…` and `pre-restore` belong to peerlite's own backups".into()
        }
        Error::SyncSchema { .. } => {
            "fix the sync schema file (`peerlite schema-check FILE --db DB` lists every problem)".into()
        }
        Error::DistributedTypeMismatch { .. } => {
            "all distributed tables of a database use one mode (`peerlite distribute DB TABLE --mode …`), and it cannot be switched".into()
        }
        Error::NotDistributed { .. } => {
            "make the table distributed first: `peerlite distribute DB TABLE`".into()
        }
        Error::Protected { what, .. } if what.starts_with("PRAGMA") => {
            "leave this pragma out of `peerlite sql`: peerlite manages it (the reason is above; `peerlite checkpoint DB` empties the log)".into()
        }
        Error::OwnObjectsDamaged { problems } if problems.iter().any(|p| p.starts_with("peerlite_meta")) => {
            "the store's identity rows cannot be remade without its peers taking it for a device they never met: put a backup back with `peerlite restore DB NAME` (`peerlite backups DB` lists them; the damaged file is kept in quarantine)".into()
        }
        Error::Sqlite { sqlite, .. } => sqlite_hint(sqlite.primary, command),
        Error::RowOutOfRange { .. }
        | Error::ColumnOutOfRange { .. }
        | Error::TypeMismatch { .. }
        | Error::Closed { .. }
        | Error::TooManyObservers { .. } => format!(
            "this should not happen from the command line: run `peerlite {command}` again, and report it if it repeats"
        ),
        other => library_hint_or_help(other, command),
    }
}

/// `--kv STORE_DIR STORE_ID` for a key-value store, else `fallback`.
fn kv_or<'a>(command: &str, fallback: &'a str) -> &'a str {
    if command == "kv" {
        "--kv STORE_DIR STORE_ID"
    } else {
        fallback
    }
}

/// A failed migration kept the old version and data; what to do depends on why it failed.
fn migration_hint(source: &Error, command: &str) -> String {
    let again = if command == "migrate" {
        "run `peerlite migrate DB DIR` again"
    } else {
        "run the command again"
    };
    match source {
        Error::Io { .. } => format!("nothing changed; {}, then {again}", io_hint_plain(source)),
        Error::Sqlite { sqlite, .. } if matches!(sqlite.primary, 5 | 6) => {
            format!("nothing changed; another connection holds the lock: {again}")
        }
        Error::Sqlite { sqlite, .. } if matches!(sqlite.primary, 8 | 10 | 13 | 14) => format!(
            "nothing changed; {}, then {again}",
            sqlite_hint(sqlite.primary, command)
        ),
        e if e.is_corruption() => specific(e, command),
        _ if command == "migrate" => "nothing changed; fix the failing step's .sql file in DIR and run `peerlite migrate DB DIR` again (`--dry-run` tries it without changing anything)".into(),
        _ => format!("nothing changed; {again}"),
    }
}

fn io_hint_plain(err: &Error) -> &'static str {
    match err {
        Error::Io { source, .. } => io_cause(source),
        _ => "check free space and permissions",
    }
}

fn io_cause(source: &std::io::Error) -> &'static str {
    match source.kind() {
        std::io::ErrorKind::NotFound => "check that the directory exists",
        std::io::ErrorKind::PermissionDenied => {
            "check the permissions of the file and its directory"
        }
        std::io::ErrorKind::StorageFull => "free disk space",
        _ if source.raw_os_error() == Some(27) => {
            "a file reached the size limit of this shell (`ulimit -f`); raise it"
        }
        _ => "check free space, permissions and that the directory exists",
    }
}

fn io_hint(source: &std::io::Error) -> String {
    format!(
        "{}, then run the `peerlite` command again",
        io_cause(source)
    )
}

fn sqlite_hint(primary: i32, command: &str) -> String {
    match primary {
        5 | 6 => format!(
            "another connection holds the write lock; run `peerlite {command}` again when it is done"
        ),
        7 => format!("free memory, then run `peerlite {command}` again"),
        8 => format!("the file or its directory is read-only: check permissions, then run `peerlite {command}` again"),
        10 => format!("a disk I/O error occurred: check the disk and free space, then run `peerlite {command}` again"),
        13 => format!("the disk is full (nothing was committed): free space, then run `peerlite {command}` again"),
        14 => format!("check that the directory exists and is writable, then run `peerlite {command}` again"),
        18 => format!("the value is larger than SQLite accepts: store it in smaller pieces (`peerlite {command} --help`)"),
        19 => "a constraint (UNIQUE, NOT NULL, CHECK, FOREIGN KEY) rejected the change and nothing was written; `peerlite sql DB \"SELECT sql FROM sqlite_schema\"` shows the constraints".into(),
        20 => "the value's type does not fit the column; `peerlite sql DB \"SELECT sql FROM sqlite_schema\"` shows the column types".into(),
        _ if command == "sql" => "check the SQL statement; nothing was written (`peerlite sql` runs all the statements in one transaction)".into(),
        _ => format!("check the arguments (`peerlite {command} --help`) and run the command again"),
    }
}

/// An error this command line does not know yet: the library's hint when it names no library
/// function (no `name()`, no `Type::item`, no `snake_case` word outside backticks; an
/// upper-case placeholder such as STORE_DIR is not one), else help.
fn library_hint_or_help(err: &Error, command: &str) -> String {
    let hint = err.hint();
    if names_no_library_function(hint) {
        hint.to_owned()
    } else {
        format!("see `peerlite {command} --help`")
    }
}

#[cfg(test)]
mod tests {
    //! Every error the library can report, under every command: the hint names no library
    //! function (the issue found `get_entries(prefix)`, `RestoreRequest::allow_other_store`,
    //! `Migration::with_down` and `transaction()` in hints a shell user was shown).

    use super::*;
    use peerlite::{SqliteCode, StoreKind};

    fn sqlite(primary: i32) -> Error {
        Error::Sqlite {
            sqlite: SqliteCode {
                primary,
                extended: primary,
            },
            message: "m".into(),
        }
    }

    fn every_error() -> Vec<Error> {
        let kind = StoreKind::Relational;
        let io = |kind| Error::Io {
            op: "writing",
            path: "x".into(),
            source: std::io::Error::from(kind),
        };
        let mut all = vec![
            Error::InvalidArgument { message: "m".into(), kind },
            Error::InvalidArgument {
                message: "transaction control (BEGIN / COMMIT / ROLLBACK / END) inside peerlite's transaction; use transaction()".into(),
                kind,
            },
            Error::UnknownTable { table: "t".into(), kind },
            Error::UnknownColumn { table: "t".into(), column: "c".into(), kind },
            Error::InvalidPath { path: "/no/such/dir/x.db".into(), reason: "r".into() },
            Error::InvalidPath { path: "/".into(), reason: "r".into() },
            Error::Corrupted { path: "x".into(), detail: "d".into(), sqlite: None, kind },
            Error::RowOutOfRange { detail: "d".into() },
            Error::ColumnOutOfRange { column: "c".into() },
            Error::Closed { what: "store", kind },
            Error::NotFound { what: "key \"k\"".into() },
            Error::NotFound { what: "key-value store \"s\" in d".into() },
            Error::NotAQuery { sql: "s".into() },
            Error::WrongKey { path: "x".into(), detail: "d".into() },
            Error::ConfigChanged { detail: "d".into(), kind },
            Error::TooManyObservers { max: 8, kind },
            Error::TypeMismatch { column: "c".into(), expected: "e", found: "f" },
            Error::ReadOnly { detail: "d".into() },
            Error::Downgrade { from: 3, to: 2 },
            Error::ReadOnlyUpgrade { from: 1, to: 2 },
            Error::ForeignKeyViolation { table: "t".into(), violations: 1 },
            Error::BackupNotFound { what: "w".into() },
            Error::BackupInvalid { path: "x".into(), reason: "r".into() },
            Error::BackupTooNew { backup: 3, store: 2 },
            Error::BackupOfAnotherStore { backup: "a".into(), store: "b".into() },
            Error::Cancelled { what: "backup" },
            Error::ReservedBackupName { name: "auto-x".into(), reason: "r" },
            Error::SyncSchema { problems: Vec::new() },
            Error::DistributedTypeMismatch { detail: "d".into() },
            Error::NotDistributed { table: "t".into() },
            Error::ReadOnlyDeviceTable { table: "t".into() },
            Error::NullConflictColumn { table: "t".into(), column: "c".into() },
            Error::Protocol { detail: "d".into() },
            Error::IncompatiblePeer { device: "d".into(), detail: "d".into() },
            Error::Protected { what: "PRAGMA synchronous = OFF".into(), reason: "r".into() },
            Error::Protected { what: "dropping t".into(), reason: "r".into() },
            Error::DeviceIdChanged { stored: "a".into(), requested: "b".into() },
            Error::ResultTooLarge { bytes: 5, max: 4 },
        ];
        for code in [17040001, 17040005, 17040006, 17040010, 14800001] {
            all.push(Error::Remote {
                device: "d".into(),
                code,
                detail: "d".into(),
            });
        }
        for kind in [
            std::io::ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied,
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::Other,
        ] {
            all.push(io(kind));
        }
        for primary in [1, 5, 6, 7, 8, 10, 11, 13, 14, 18, 19, 20, 23, 26] {
            all.push(sqlite(primary));
        }
        let sources: Vec<Error> = (0..all.len()).map(|i| clone_shallow(&all[i])).collect();
        for source in sources {
            all.push(Error::Migration {
                step: "0002_x".into(),
                from: 1,
                to: 2,
                source: Box::new(source),
            });
        }
        all
    }

    /// A copy good enough for a migration's source (Error is not Clone).
    fn clone_shallow(e: &Error) -> Error {
        match e {
            Error::Sqlite { sqlite, message } => Error::Sqlite {
                sqlite: *sqlite,
                message: message.clone(),
            },
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: std::io::Error::from(source.kind()),
            },
            other => Error::InvalidArgument {
                message: other.to_string(),
                kind: StoreKind::Relational,
            },
        }
    }

    #[test]
    fn every_hint_names_cli_commands_never_library_functions() {
        for command in [
            "sql", "kv", "migrate", "backup", "restore", "repair", "check", "version",
        ] {
            for err in every_error() {
                let hint = for_error(&err, command);
                assert!(
                    names_cli(&hint),
                    "`peerlite {command}` hint for {err:?} names no command or flag: {hint}"
                );
                assert!(
                    names_no_library_function(&hint),
                    "`peerlite {command}` hint for {err:?} names a library function: {hint}"
                );
                for banned in [
                    "allow_rebuild",
                    "get_entries",
                    "allow_other_store",
                    "with_down",
                    "transaction()",
                ] {
                    assert!(!hint.contains(banned), "{command} {err:?}: {hint}");
                }
            }
        }
    }

    #[test]
    fn hints_follow_the_cause() {
        let disk_full = Error::Migration {
            step: "0002_x".into(),
            from: 1,
            to: 2,
            source: Box::new(sqlite(13)),
        };
        let hint = for_error(&disk_full, "migrate");
        assert!(
            hint.contains("free space") && !hint.contains("fix the failing step"),
            "{hint}"
        );
        let missing = Error::InvalidPath {
            path: "/no/such/file.db".into(),
            reason: "no database there".into(),
        };
        let hint = for_error(&missing, "version");
        assert!(
            hint.contains("nothing is there") && !hint.contains("plain file name"),
            "{hint}"
        );
    }

    /// The hint under a corruption `restore` reported proposed `peerlite restore DB NAME` —
    /// the command that had just refused. A hint never proposes the command that refused.
    #[test]
    fn a_refusing_restore_is_not_told_to_restore() {
        let damaged = Error::Corrupted {
            path: "a.db".into(),
            detail: "x".into(),
            sqlite: None,
            kind: peerlite::StoreKind::Relational,
        };
        let hint = for_error(&damaged, "restore");
        assert!(hint.contains("peerlite repair DB"), "{hint}");
        assert!(!hint.contains("peerlite restore"), "{hint}");
        assert!(for_error(&damaged, "check").contains("peerlite restore"));
        let older = Error::InvalidArgument {
            message: "the backup is at version 7 and the store at 9, and no migrations were given to upgrade the restored data (nothing changed)".into(),
            kind: peerlite::StoreKind::Relational,
        };
        assert!(for_error(&older, "restore").contains("--migrations DIR"));
    }

    #[test]
    fn the_library_function_detector_works() {
        assert!(!names_no_library_function("use get_entries(prefix)"));
        assert!(!names_no_library_function(
            "force it (RestoreRequest::allow_other_store)"
        ));
        assert!(!names_no_library_function("open with allow_rebuild"));
        assert!(names_no_library_function(
            "run `peerlite schema-check FILE --db DB`"
        ));
        assert!(names_no_library_function(
            "fix `sync_schema.json` and retry"
        ));
    }
}
