//! Store-level facts peerlite keeps inside the database (`peerlite_meta`): the security level
//! it was created at, the key-value store's type, and later the sync epoch.

use rusqlite::{Connection, OptionalExtension};

const CREATE: &str = "CREATE TABLE IF NOT EXISTS peerlite_meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID";

/// Reads `key`; `None` when the table or the key does not exist.
pub(crate) fn get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    if !super::schema::table_exists(conn, "peerlite_meta")? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT value FROM peerlite_meta WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()
}

/// Writes `key`, creating the table on first use.
pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute_batch(CREATE)?;
    conn.execute(
        "INSERT INTO peerlite_meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// A new epoch: a random id. A database gets one when it is created, restored or repaired;
/// peers tag what they receive with it, so what a database held is never taken for what a
/// later one of the same device holds.
pub(crate) fn new_epoch(path: &std::path::Path) -> String {
    new_store_id(path)
}

/// A new random store id (128 bits, hex), from the clock, the process and the path.
pub(crate) fn new_store_id(path: &std::path::Path) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.update(&nanos.to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(path.as_os_str().as_encoded_bytes());
    let stack_marker = 0u8;
    h.update(&(std::ptr::addr_of!(stack_marker) as usize).to_le_bytes());
    h.finalize().to_hex()[..32].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_table() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(get(&conn, "a").unwrap(), None);
        set(&conn, "a", "1").unwrap();
        set(&conn, "a", "2").unwrap();
        assert_eq!(get(&conn, "a").unwrap().as_deref(), Some("2"));
        assert_eq!(get(&conn, "b").unwrap(), None);
    }
}
