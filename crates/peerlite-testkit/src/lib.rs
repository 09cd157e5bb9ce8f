//! Test helpers for peerlite: fresh store paths in temporary directories, a migration harness
//! that builds a database at an older schema version and then migrates it, small query
//! helpers that turn a result set into plain Rust values, and a deadlock detector
//! ([`run_with_timeout`]).
//!
//! ```
//! use peerlite::{Migration, Migrations};
//! use peerlite_testkit::{create_at_version, migrate_to, scalar, temp_store_path};
//!
//! let (_dir, path) = temp_store_path();
//! let migrations = Migrations::new()
//!     .step(Migration::sql("0001_init", "CREATE TABLE t(a INTEGER)"))
//!     .step(Migration::sql("0002_b", "ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'"));
//! create_at_version(&path, &migrations, 1)?;
//! let store = migrate_to(&path, &migrations, 2)?;
//! assert_eq!(store.version()?, 2);
//! assert_eq!(scalar::<i64>(&store, "SELECT count(*) FROM pragma_table_info('t')")?, 2);
//! # Ok::<(), peerlite::Error>(())
//! ```

pub mod hostile;
pub mod sim;
#[cfg(unix)]
pub mod unread;

use std::path::{Path, PathBuf};

use peerlite::{FromValue, Migrations, RdbStore, Result, StoreConfig, Value};

/// A temporary directory deleted when dropped (re-exported from `tempfile`, so tests need not
/// depend on it directly).
pub use tempfile::TempDir;

/// The file name [`temp_store_path`] uses inside its directory.
pub const DEFAULT_DB_NAME: &str = "test.db";

/// A fresh temporary directory and the path of a database file inside it (`test.db`, not yet
/// created). Keep the [`TempDir`] alive for as long as the database is used: dropping it
/// deletes the directory.
///
/// # Panics
/// When the system cannot create a temporary directory.
pub fn temp_store_path() -> (TempDir, PathBuf) {
    temp_store_path_named(DEFAULT_DB_NAME)
}

/// Like [`temp_store_path`], with the database file called `file_name`.
///
/// # Panics
/// When the system cannot create a temporary directory.
pub fn temp_store_path_named(file_name: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("creating a temporary directory for a test store");
    let path = dir.path().join(file_name);
    (dir, path)
}

/// A fresh, unversioned, unencrypted store in a new temporary directory.
///
/// # Errors
/// Whatever [`RdbStore::open`] reports.
///
/// # Panics
/// When the system cannot create a temporary directory.
pub fn temp_store() -> Result<(TempDir, RdbStore)> {
    let (dir, path) = temp_store_path();
    let store = RdbStore::open(StoreConfig::new(path))?;
    Ok((dir, store))
}

/// Creates the database at `path` at exactly `version`, running only the first `version` steps
/// of `migrations` (via [`Migrations::up_to`]), then closes it. An existing database at a lower
/// version is migrated up to `version`.
///
/// # Errors
/// Whatever the versioned open reports (17010001 when a step fails, 14800001 for version 0, …).
pub fn create_at_version(
    path: impl AsRef<Path>,
    migrations: &Migrations,
    version: u32,
) -> Result<()> {
    create_at_version_with(StoreConfig::new(path.as_ref()), migrations, version)
}

/// [`create_at_version`] with a full configuration (for example an encrypted store). The
/// configuration's own version, if any, is replaced by `version`.
///
/// # Errors
/// Whatever the versioned open reports.
pub fn create_at_version_with(
    config: StoreConfig,
    migrations: &Migrations,
    version: u32,
) -> Result<()> {
    let mut older = migrations.up_to(version);
    let store = RdbStore::open_with(config.version(version), &mut older)?;
    store.close()
}

/// Opens the database at `path` with all of `migrations` and brings it to `version`; returns
/// the open store.
///
/// # Errors
/// Whatever the versioned open reports (17010001 a step failed, 17010002 downgrade without a
/// down path, …); the database then keeps its old version and data.
pub fn migrate_to(
    path: impl AsRef<Path>,
    migrations: &Migrations,
    version: u32,
) -> Result<RdbStore> {
    migrate_to_with(StoreConfig::new(path.as_ref()), migrations, version)
}

/// [`migrate_to`] with a full configuration. The configuration's own version, if any, is
/// replaced by `version`.
///
/// # Errors
/// Whatever the versioned open reports.
pub fn migrate_to_with(
    config: StoreConfig,
    migrations: &Migrations,
    version: u32,
) -> Result<RdbStore> {
    let mut all = migrations.clone();
    RdbStore::open_with(config.version(version), &mut all)
}

/// Every row's first column of a read-only query, converted to `T`.
///
/// # Errors
/// Query errors, and 14800033 when a value cannot be read as `T`.
pub fn query_column<T: FromValue>(store: &RdbStore, sql: &str, params: &[Value]) -> Result<Vec<T>> {
    let mut rs = store.query_sql(sql, params)?;
    let mut out = Vec::new();
    while rs.go_to_next_row()? {
        out.push(rs.get::<T>(0)?);
    }
    Ok(out)
}

/// The first column of the first row of a read-only query without parameters.
///
/// # Errors
/// Query errors; 14800012 when the query returns no row; 14800033 when the value cannot be
/// read as `T`.
pub fn scalar<T: FromValue>(store: &RdbStore, sql: &str) -> Result<T> {
    let mut rs = store.query_sql(sql, &[])?;
    rs.go_to_first_row()?;
    rs.get::<T>(0)
}

/// The number of rows in `table` (the name is quoted, so any table name works).
///
/// # Errors
/// Query errors (14800021 for a table that does not exist).
pub fn count_rows(store: &RdbStore, table: &str) -> Result<i64> {
    scalar(store, &format!("SELECT count(*) FROM {}", quote(table)))
}

/// Every schema object of the store as `(type, name)`, sorted, without SQLite's and peerlite's
/// internal ones (`sqlite_*`, `peerlite_*`).
///
/// # Errors
/// Query errors.
pub fn schema_objects(store: &RdbStore) -> Result<Vec<(String, String)>> {
    let mut rs = store.query_sql(
        "SELECT type, name FROM sqlite_schema \
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'peerlite\\_%' ESCAPE '\\' \
         ORDER BY type, name",
        &[],
    )?;
    let mut out = Vec::new();
    while rs.go_to_next_row()? {
        out.push((rs.get::<String>(0)?, rs.get::<String>(1)?));
    }
    Ok(out)
}

/// Every row of a read-only query as a vector of values, in order.
///
/// # Errors
/// Query errors.
pub fn all_rows(store: &RdbStore, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>> {
    let rs = store.query_sql(sql, params)?;
    let rows = rs.rows()?.map(<[Value]>::to_vec).collect();
    Ok(rows)
}

/// True when `needle` occurs anywhere in the bytes of the file at `path` (for checking that an
/// encrypted file leaks no plaintext).
///
/// # Errors
/// When the file cannot be read.
pub fn file_contains(path: impl AsRef<Path>, needle: &[u8]) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    Ok(!needle.is_empty() && bytes.windows(needle.len()).any(|w| w == needle))
}

/// Runs `f` on a new thread and returns its result, failing the test when it does not finish
/// within `timeout` (a deadlock detector: a hung call fails the test instead of hanging the
/// whole test run). The thread is left running if it hangs.
///
/// # Panics
/// When `f` does not finish in time, or when `f` itself panics.
pub fn run_with_timeout<T, F>(timeout: std::time::Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    use std::sync::mpsc::{RecvTimeoutError, channel};
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        // The receiver may have given up already; nothing to do then.
        let _ = sender.send(f());
    });
    match receiver.recv_timeout(timeout) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => {
            panic!("did not finish within {timeout:?}: probably a deadlock")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("the operation panicked"),
    }
}

/// Quotes an SQL identifier: `a"b` becomes `"a""b"`.
pub fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use peerlite::Migration;

    fn two_steps() -> Migrations {
        Migrations::new()
            .step(Migration::sql("0001_init", "CREATE TABLE t(a INTEGER)"))
            .step(Migration::sql(
                "0002_b",
                "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x'",
            ))
    }

    #[test]
    fn harness_builds_an_old_version_then_migrates() {
        let (_dir, path) = temp_store_path();
        let m = two_steps();
        create_at_version(&path, &m, 1).unwrap();
        {
            let store = RdbStore::open(StoreConfig::new(&path)).unwrap();
            assert_eq!(store.version().unwrap(), 1);
            assert_eq!(
                query_column::<String>(&store, "SELECT name FROM pragma_table_info('t')", &[])
                    .unwrap(),
                ["a"]
            );
            store.execute("INSERT INTO t(a) VALUES (7)", &[]).unwrap();
            store.close().unwrap();
        }
        let store = migrate_to(&path, &m, 2).unwrap();
        assert_eq!(store.version().unwrap(), 2);
        assert_eq!(
            all_rows(&store, "SELECT a, b FROM t", &[]).unwrap(),
            vec![vec![Value::Integer(7), Value::Text("x".into())]]
        );
        assert_eq!(count_rows(&store, "t").unwrap(), 1);
        assert_eq!(
            schema_objects(&store).unwrap(),
            vec![("table".to_owned(), "t".to_owned())]
        );
    }

    #[test]
    fn version_zero_is_refused() {
        let (_dir, path) = temp_store_path();
        let err = create_at_version(&path, &two_steps(), 0).unwrap_err();
        assert_eq!(err.code(), 14800001);
        assert!(!path.exists());
    }

    #[test]
    fn file_contains_and_quote() {
        let (dir, _) = temp_store_path();
        let f = dir.path().join("x.bin");
        std::fs::write(&f, b"abc needle xyz").unwrap();
        assert!(file_contains(&f, b"needle").unwrap());
        assert!(!file_contains(&f, b"haystack").unwrap());
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn run_with_timeout_returns_or_fails() {
        let d = std::time::Duration::from_secs(5);
        assert_eq!(run_with_timeout(d, || 41 + 1), 42);
        let hung = std::panic::catch_unwind(|| {
            run_with_timeout(std::time::Duration::from_millis(50), || {
                std::thread::sleep(std::time::Duration::from_secs(2));
            })
        });
        assert!(hung.is_err());
    }
}

/// The real `sqlite3` command-line shell, found on `PATH` (backup tests run it as a child
/// process to show that a backup is an ordinary SQLite file).
///
/// # Panics
/// When there is no `sqlite3` on `PATH`, with the command that installs it.
pub fn sqlite3_shell() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("sqlite3"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the sqlite3 shell is not on PATH: install the sqlite3 shell: apt-get install sqlite3; .ci/run does this"
            )
        })
}

/// What a run of the `sqlite3` shell printed.
#[derive(Debug, Clone)]
pub struct ShellOutput {
    /// True when the shell exited with status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the `sqlite3` shell read-only (`-readonly -bail`) on `db` with `sql` as its command.
///
/// # Panics
/// When the shell is missing (see [`sqlite3_shell`]) or cannot be started.
pub fn run_sqlite3(db: impl AsRef<Path>, sql: &str) -> ShellOutput {
    let out = std::process::Command::new(sqlite3_shell())
        .arg("-readonly")
        .arg("-bail")
        .arg(db.as_ref())
        .arg(sql)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the sqlite3 shell: {e}"));
    ShellOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `len` pseudo-random bytes from `seed` (SplitMix64): the same seed gives the same bytes, so a
/// test that damages a file damages it the same way on every run.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `count` distinct page numbers in `first..=last`, chosen pseudo-randomly from `seed`, sorted.
///
/// # Panics
/// When the range holds fewer than `count` pages.
pub fn pseudo_random_pages(seed: u64, first: u64, last: u64, count: usize) -> Vec<u64> {
    assert!(
        last >= first && (last - first + 1) as usize >= count,
        "the range {first}..={last} holds fewer than {count} pages"
    );
    let span = last - first + 1;
    let mut pages = Vec::with_capacity(count);
    let mut round = 0u64;
    while pages.len() < count {
        let bytes = pseudo_random_bytes(seed ^ round.wrapping_mul(0x2545_F491_4F6C_DD1D), 8);
        round += 1;
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes);
        let page = first + u64::from_le_bytes(word) % span;
        if !pages.contains(&page) {
            pages.push(page);
        }
    }
    pages.sort_unstable();
    pages
}

/// Overwrites the given pages (numbered from 1, as SQLite numbers them) of the file at `path`
/// with pseudo-random bytes from `seed`; the file keeps its size.
///
/// # Errors
/// When the file cannot be read or written, or a page lies past its end.
pub fn corrupt_pages(
    path: impl AsRef<Path>,
    page_size: usize,
    pages: &[u64],
    seed: u64,
) -> std::io::Result<()> {
    let path = path.as_ref();
    let mut bytes = std::fs::read(path)?;
    for (i, &page) in pages.iter().enumerate() {
        let start = (page as usize)
            .checked_sub(1)
            .map(|p| p * page_size)
            .filter(|s| s + page_size <= bytes.len())
            .ok_or_else(|| {
                std::io::Error::other(format!(
                    "page {page} is not in {} ({} bytes)",
                    path.display(),
                    bytes.len()
                ))
            })?;
        let noise = pseudo_random_bytes(seed.wrapping_add(i as u64), page_size);
        bytes[start..start + page_size].copy_from_slice(&noise);
    }
    std::fs::write(path, bytes)
}

/// Flips every bit of the byte at `offset` in the file at `path`; returns the byte it held.
///
/// # Errors
/// When the file cannot be read or written, or `offset` lies past its end.
pub fn flip_byte(path: impl AsRef<Path>, offset: u64) -> std::io::Result<u8> {
    let path = path.as_ref();
    let mut bytes = std::fs::read(path)?;
    let byte = usize::try_from(offset)
        .ok()
        .and_then(|o| bytes.get_mut(o))
        .ok_or_else(|| std::io::Error::other(format!("offset {offset} is past the end")))?;
    let old = *byte;
    *byte = !old;
    std::fs::write(path, bytes)?;
    Ok(old)
}

/// The names of the entries of `dir`, sorted (empty when it does not exist).
pub fn dir_entries(dir: impl AsRef<Path>) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Copies the directory tree `from` to `to` (created as needed): a store's files with its
/// backups, copied once per trial.
///
/// # Errors
/// When a directory cannot be read or created, or a file cannot be copied.
pub fn copy_dir(from: impl AsRef<Path>, to: impl AsRef<Path>) -> std::io::Result<()> {
    let to = to.as_ref();
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// True when a `hint:` line names no library function a shell user cannot call: no `name()`,
/// no `Type::item`, no `snake_case` word outside backticks (an upper-case placeholder such as
/// STORE_DIR is not one). The command line shows a library hint only when this holds, and its
/// tests check every hint it prints by the same rule.
///
/// ```
/// use peerlite_testkit::names_no_library_function;
///
/// assert!(names_no_library_function("run `peerlite repair DB` (STORE_DIR is kept)"));
/// assert!(!names_no_library_function("open with allow_rebuild"));
/// assert!(!names_no_library_function("call RdbStore::repair"));
/// ```
pub fn names_no_library_function(hint: &str) -> bool {
    if hint.contains("()") || hint.contains("::") {
        return false;
    }
    // Words outside backticks: the even-numbered pieces of a split on '`'.
    !hint.split('`').step_by(2).any(|text| {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| {
                w.contains('_')
                    && !w.starts_with('_')
                    && !w.ends_with('_')
                    && w.chars().any(char::is_lowercase)
            })
    })
}

/// Polls `condition` every few milliseconds until it holds; false when `timeout` passes first.
pub fn wait_for(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
