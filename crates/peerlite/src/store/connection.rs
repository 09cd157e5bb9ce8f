//! Opening one SQLite connection the way every peerlite connection is opened: key first, a
//! probe that tells a wrong key from a corrupted file, then the pragmas of its role.

use std::io::Read;
use std::path::Path;

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags};

use super::config::{Durability, StoreConfig};
use crate::error::{Error, Result};

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The one connection that writes.
    Writer,
    /// A pooled read-only connection.
    Reader,
    /// A read-only connection that holds one read transaction open (a backup's snapshot).
    Snapshot,
    /// The background checkpoint's connection: it writes the database file, never a row.
    Checkpointer,
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
const STATEMENT_CACHE: usize = 64;

/// Opens a connection for `role`, keyed and configured.
///
/// A restore may replace the file at the path (by rename, holding the old file's exclusive
/// lock, see `backup::swap`) while this open waits for that lock: the connection would then
/// read the old file with the new file's WAL. So the file's identity is compared before and
/// after (when the probe has read it), and an open that raced a swap opens again.
pub(crate) fn open(config: &StoreConfig, role: Role) -> Result<Connection> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        let before = file_id(config.path());
        match open_once(config, role, before) {
            Ok(Some(conn)) => return Ok(conn),
            Err(e) => return Err(e),
            Ok(None) if attempt == ATTEMPTS => {
                return Err(Error::io(
                    "opening",
                    config.path(),
                    std::io::Error::other(
                        "the database file was replaced while it was opened, again and again",
                    ),
                ));
            }
            Ok(None) => {
                tracing::debug!(path = ?config.path(), "the database was replaced while opening; opening again");
                attempt += 1;
            }
        }
    }
}

/// The identity of the file at `path` (device and inode), when there is one.
#[cfg(unix)]
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub(crate) fn file_id(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Whether the file at `path` is no longer the one that was there (`before`) when the open
/// began.
fn replaced(path: &Path, before: Option<(u64, u64)>) -> bool {
    before.is_some() && file_id(path) != before
}

/// One open; `None` when the file was replaced while the probe waited for it (nothing was
/// written through the connection).
fn open_once(
    config: &StoreConfig,
    role: Role,
    before: Option<(u64, u64)>,
) -> Result<Option<Connection>> {
    let path = config.path();
    let writable = role == Role::Writer && !config.read_only;
    if !writable && !path.exists() {
        return Err(Error::InvalidPath {
            path: path.to_path_buf(),
            reason: "the database does not exist (a read-only open never creates it)".into(),
        });
    }
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    flags |= match role {
        _ if writable => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Checkpointer => OpenFlags::SQLITE_OPEN_READ_WRITE,
        _ => OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(e, path))?;
    // Defensive mode: no SQL can corrupt the file. Among others, `sqlite_dbpage` (compiled in
    // for salvage) becomes read-only: caller SQL could otherwise write raw pages.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(|e| Error::from_sqlite(e, path))?;
    // SQLCipher logs decryption failures to stderr; peerlite reports them as errors instead.
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
    conn.busy_timeout(config.busy_timeout)
        .map_err(|e| Error::from_sqlite(e, path))?;
    if let Some(key) = &config.key {
        conn.pragma_update(None, "key", key.secret())
            .map_err(|e| Error::from_sqlite(e, path))?;
    }
    let probed = probe(&conn, path, config.key.is_some());
    // Checked before the result is believed (a read of the old file with the new one's WAL
    // may fail in any way) and before anything is written (the switch to WAL below would
    // write into the replaced file).
    if replaced(path, before) {
        return Ok(None);
    }
    probed?;
    if writable {
        let mode =
            switch_to_wal(&conn, config.busy_timeout).map_err(|e| Error::from_sqlite(e, path))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                ?path,
                mode,
                "could not switch to WAL; readers may block the writer"
            );
        }
        let sync = match config.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(|e| Error::from_sqlite(e, path))?;
        conn.pragma_update(None, "foreign_keys", config.foreign_keys)
            .map_err(|e| Error::from_sqlite(e, path))?;
    }
    if role == Role::Reader {
        // A pooled reader must never be left inside a transaction (it would serve a stale
        // snapshot to the next caller): refuse BEGIN and SAVEPOINT outright; nor keep an
        // attachment the next caller would inherit (ATTACH counts as read-only). A pragma that
        // sets something would outlive the statement on a pooled connection, so settings are
        // refused here too: a script that has one goes to the writer, whose guard judges it.
        let mut conn = conn;
        conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
            AuthAction::Transaction { .. }
            | AuthAction::Savepoint { .. }
            | AuthAction::Attach { .. }
            | AuthAction::Detach { .. } => Authorization::Deny,
            AuthAction::Pragma {
                pragma_name,
                pragma_value,
            } if (pragma_value.is_some() && !takes_an_argument(pragma_name))
                || super::guard::pragma_refusal(pragma_name, pragma_value).is_some() =>
            {
                Authorization::Deny
            }
            _ => Authorization::Allow,
        }))
        .map_err(|e| Error::from_sqlite(e, path))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        return Ok(Some(conn));
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(Some(conn))
}

/// Pragmas whose value is the argument of a query (`quick_check(50)`, `table_info(t)`),
/// not a setting that would stay on the connection.
fn takes_an_argument(pragma: &str) -> bool {
    const QUERIES: [&str; 11] = [
        "quick_check",
        "integrity_check",
        "cipher_integrity_check",
        "table_info",
        "table_xinfo",
        "table_list",
        "index_info",
        "index_xinfo",
        "index_list",
        "foreign_key_list",
        "foreign_key_check",
    ];
    QUERIES.iter().any(|q| q.eq_ignore_ascii_case(pragma))
}

/// `PRAGMA journal_mode=WAL` needs an exclusive lock and SQLite returns BUSY at once, without
/// the busy handler, when another connection is opening the same new file: retry until the
/// busy timeout runs out.
fn switch_to_wal(conn: &Connection, timeout: std::time::Duration) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Opens another database file (a backup, a quarantined copy) read-only with `key`.
pub(crate) fn open_file(path: &Path, key: Option<&super::EncryptionKey>) -> Result<Connection> {
    let mut config = StoreConfig::new(path);
    config.key = key.cloned();
    open(&config, Role::Snapshot)
}

fn open_error(err: rusqlite::Error, path: &Path) -> Error {
    match Error::from_sqlite(err, path) {
        Error::Sqlite { sqlite, message } if sqlite.primary == 14 => Error::InvalidPath {
            path: path.to_path_buf(),
            reason: format!(
                "cannot open: {message} (does the directory exist and is it writable?)"
            ),
        },
        other => other,
    }
}

/// Reads the schema once: the first read is where SQLCipher finds out whether the key fits.
fn probe(conn: &Connection, path: &Path, keyed: bool) -> Result<()> {
    match conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(e) => match Error::from_sqlite(e, path) {
            Error::Corrupted { sqlite, detail, .. } => {
                Err(classify_unreadable(conn, path, keyed, sqlite, detail))
            }
            // The header's schema format number (offset 44) is past what SQLite knows: no
            // SQLite ever writes one, so the header is damaged — corruption, which a repair
            // mends, not an argument to check.
            Error::Sqlite { sqlite, message } if message.contains("unsupported file format") => {
                Err(Error::Corrupted {
                    path: path.to_path_buf(),
                    detail: format!("the database header is damaged ({message})"),
                    sqlite: Some(sqlite),
                    kind: crate::StoreKind::Relational,
                })
            }
            other => Err(other),
        },
    }
}

/// Database files opened by a peerlite store in this process, with how many stores hold each.
/// peerlite never opens such a file with a plain descriptor: closing it would release every
/// POSIX lock this process holds on the file, including SQLite's.
static OPEN_FILES: std::sync::Mutex<Vec<(std::path::PathBuf, usize)>> =
    std::sync::Mutex::new(Vec::new());

fn canonical(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

pub(crate) fn is_open_in_this_process(path: &Path) -> bool {
    let path = canonical(path);
    OPEN_FILES
        .lock()
        .map(|open| open.iter().any(|(p, _)| *p == path))
        .unwrap_or(true)
}

/// Marks a database file as open by a store until dropped.
#[derive(Debug)]
pub(crate) struct OpenFile(std::path::PathBuf);

impl OpenFile {
    pub fn register(path: &Path) -> OpenFile {
        let path = canonical(path);
        if let Ok(mut open) = OPEN_FILES.lock() {
            match open.iter_mut().find(|(p, _)| *p == path) {
                Some((_, n)) => *n += 1,
                None => open.push((path.clone(), 1)),
            }
        }
        OpenFile(path)
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let Ok(mut open) = OPEN_FILES.lock()
            && let Some(i) = open.iter().position(|(p, _)| *p == self.0)
        {
            open[i].1 -= 1;
            if open[i].1 == 0 {
                open.swap_remove(i);
            }
        }
    }
}

/// Up to 64 KiB of the file from `offset`.
fn sample(path: &Path, offset: u64) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let mut sample = vec![0u8; 64 * 1024];
    let read = std::fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        let mut total = 0;
        loop {
            let n = f.read(&mut sample[total..])?;
            if n == 0 || total + n == sample.len() {
                return Ok(total + n);
            }
            total += n;
        }
    });
    sample.truncate(read.unwrap_or(0));
    sample
}

/// Whether the file cannot be an encrypted store. A SQLCipher file is uniformly random:
/// about one byte in 256 is zero and two in five are printable. A plaintext SQLite file
/// whose first page was overwritten still has pages full of zero bytes after it; a file of
/// text is nearly all printable. Either is a damaged or foreign file, not an encrypted one.
fn not_encrypted(path: &Path) -> bool {
    let mut head = [0u8; 16];
    let read_ok = std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok();
    if read_ok && &head == SQLITE_HEADER {
        return true;
    }
    let past_page_one = sample(path, 4096);
    if past_page_one.len() >= 4096
        && past_page_one.iter().filter(|b| **b == 0).count() * 50 > past_page_one.len()
    {
        return true;
    }
    let start = sample(path, 0);
    let printable = start
        .iter()
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    !start.is_empty() && printable * 10 >= start.len() * 9
}

/// Whether the key proves itself on this connection: SQLCipher checks every page's HMAC with
/// a key derived from the passphrase and the file's salt, and no page of the file verifies
/// under a wrong key (nor under any key when the file is not encrypted). One page that
/// verifies proves the key, however damaged (cut short, header scribbled) the rest is.
/// Reads the whole file once; only failing opens get here.
fn key_verifies(conn: &Connection, path: &Path) -> bool {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    let page_size = conn
        .query_row("PRAGMA cipher_page_size", [], |r| r.get::<_, String>(0))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|n| *n >= 512)
        .unwrap_or(4096);
    let full_pages = len / page_size;
    let lines: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA cipher_integrity_check")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect());
    let Ok(lines) = lines else { return false };
    let failed: std::collections::HashSet<u64> = lines
        .iter()
        .filter_map(|line| {
            let (_, rest) = line.split_once("page ")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .filter(|p| (1..=full_pages).contains(p))
        .collect();
    (failed.len() as u64) < full_pages
}

/// Whether `key` decrypts the encrypted database at `path` (see [`key_verifies`]).
pub(crate) fn key_decrypts(path: &Path, key: &super::EncryptionKey) -> bool {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return false;
    };
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
    conn.pragma_update(None, "key", key.secret()).is_ok() && key_verifies(&conn, path)
}

/// A key-derivation salt as SQLCipher's `cipher_salt` takes it: 32 hex digits (it comes from
/// a manifest on disk, so it is checked before it goes into a pragma).
pub(crate) fn is_salt(hex: &str) -> bool {
    hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Opens the encrypted database at `path` read-only with `key`, deriving its key from `salt`
/// instead of the salt in its (damaged) header: SQLCipher's plaintext-header mode takes the
/// salt as given, and only page 1 reads differently in it.
pub(crate) fn open_with_salt(
    path: &Path,
    key: &super::EncryptionKey,
    salt: &str,
) -> Option<Connection> {
    if !is_salt(salt) {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).ok()?;
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
    conn.pragma_update(None, "key", key.secret()).ok()?;
    conn.execute_batch(&format!(
        "PRAGMA cipher_plaintext_header_size = 32; PRAGMA cipher_salt = \"x'{salt}'\""
    ))
    .ok()?;
    Some(conn)
}

/// Whether `key` with `salt` (a record of the store's salt: its backups' manifests) verifies
/// some page of `path` past page 1 — proof of the key when the header holding the file's
/// own salt is damaged.
pub(crate) fn key_verifies_with_salt(path: &Path, key: &super::EncryptionKey, salt: &str) -> bool {
    open_with_salt(path, key, salt).is_some_and(|conn| key_verifies(&conn, path))
}

/// SQLite says "file is not a database" (or "malformed") for a wrong key, a missing key, a
/// superfluous key and a damaged file alike. Only proven corruption may be reported as such,
/// because corruption can lead to a rebuild: with a key, the key must verify on some page;
/// without one, the file must be one that cannot be an encrypted store (a plaintext SQLite
/// database, or not a database at all). Anything else is a key problem.
fn classify_unreadable(
    conn: &Connection,
    path: &Path,
    keyed: bool,
    sqlite: Option<crate::error::SqliteCode>,
    detail: String,
) -> Error {
    let corrupted = |what: &str| Error::Corrupted {
        path: path.to_path_buf(),
        detail: format!("{what} ({detail})"),
        sqlite,
        kind: crate::StoreKind::Relational,
    };
    let wrong_key = |detail: &str| Error::WrongKey {
        path: path.to_path_buf(),
        detail: detail.into(),
    };
    if keyed && key_verifies(conn, path) {
        return corrupted("the key decrypts the store, but the store is damaged");
    }
    if is_open_in_this_process(path) {
        // Another store in this process has the file open, so it is a database and opens
        // with its key; reading it with a separate descriptor would drop that store's POSIX
        // locks when the descriptor closes (SQLite's classic corruption hazard).
        return wrong_key(
            "the key does not decrypt the store (it is open elsewhere in this process with its key)",
        );
    }
    match (keyed, not_encrypted(path)) {
        (true, true) => wrong_key("the file is not encrypted, but a key was given"),
        (true, false) => wrong_key(
            "the key does not decrypt the store (wrong key, or the file is not a database)",
        ),
        (false, true) => corrupted("the file is a damaged database, or not a database"),
        (false, false) => wrong_key(
            "the file is not a plaintext SQLite database: it is encrypted (give its key) or not a database",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restore that moves files renames the new database over the old one while holding
    /// the old file's lock; an open that got its descriptor on the old file before, and its
    /// lock after, would read the old file with the new one's WAL — and a writer's switch to
    /// WAL would write into the old file, which is `pre-restore` by then. The open compares the
    /// file at the path after its probe with the one it opened, and gives the connection up
    /// before anything is believed or written: here the "replaced" file (another identity than
    /// the one the open began with) stays byte for byte as it was, in rollback mode.
    #[test]
    fn an_open_that_raced_a_swap_gives_the_connection_up_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        assert_eq!(before[18], 1, "a rollback-journal database");
        let config = StoreConfig::new(&path);
        let elsewhere = Some((u64::MAX, u64::MAX));
        for role in [Role::Writer, Role::Reader] {
            assert!(open_once(&config, role, elsewhere).unwrap().is_none());
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");
        assert!(!dir.path().join("old.db-wal").exists());
        // The same open of the file that is still there goes through (and the writer's
        // switches it to WAL).
        let here = file_id(&path);
        assert!(open_once(&config, Role::Writer, here).unwrap().is_some());
        assert_eq!(std::fs::read(&path).unwrap()[18], 2);
    }
}
