//! The global `--level S1..S4` and what every command that opens a store does with it: a
//! store the command creates gets that label; an existing store opens at the label it holds
//! (read from the file first), so a store above S1 opens without the flag.

use std::path::Path;

use peerlite::SecurityLevel;
use peerlite_net::DeviceLevel;

/// The global `--level`: a data label or a device level, by how it is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelArg {
    /// `S1`..`S4`.
    Store(SecurityLevel),
    /// `SL1`..`SL5`.
    Device(DeviceLevel),
}

/// Parses `S1`..`S4` or `SL1`..`SL5` (anything else is a usage error).
pub fn parse_level(text: &str) -> Result<LevelArg, String> {
    let store = match text {
        "S1" | "s1" => Some(SecurityLevel::S1),
        "S2" | "s2" => Some(SecurityLevel::S2),
        "S3" | "s3" => Some(SecurityLevel::S3),
        "S4" | "s4" => Some(SecurityLevel::S4),
        _ => None,
    };
    if let Some(level) = store {
        return Ok(LevelArg::Store(level));
    }
    text.parse::<DeviceLevel>().map(LevelArg::Device).map_err(|_| {
        format!(
            "{text:?} is neither a data security label (S1..S4) nor a device security level (SL1..SL5)"
        )
    })
}

/// The level as the command takes it: a data label for store commands, a device level for
/// `device` and `trust` (`for_devices`); the other spelling is a usage error.
pub fn split(
    level: Option<LevelArg>,
    for_devices: bool,
) -> Result<(Option<SecurityLevel>, Option<DeviceLevel>), String> {
    match (level, for_devices) {
        (None, _) => Ok((None, None)),
        (Some(LevelArg::Store(l)), false) => Ok((Some(l), None)),
        (Some(LevelArg::Device(l)), true) => Ok((None, Some(l))),
        (Some(LevelArg::Store(l)), true) => Err(format!(
            "--level {l} is a data label; a device's level is SL1..SL5"
        )),
        (Some(LevelArg::Device(l)), false) => Err(format!(
            "--level {l} is a device level; a store's data label is S1..S4"
        )),
    }
}

/// A value peerlite keeps in `peerlite_meta` of the store at `path` (`None` when no readable
/// copy holds it: the open that follows reports what is wrong). When the file does not give it
/// — a damaged, emptied or lost store, which `repair` or `restore` is about to put a backup in
/// place of — the value comes from the newest verified backup that holds it. Read from the
/// damaged file alone, the label and kind were the defaults (S1, single version), and the
/// rebuild that put an S2 or device-collaboration backup back was then refused as lowering the
/// label or changing the kind.
pub fn stored_meta(path: &Path, key: Option<&str>, name: &str) -> Option<String> {
    meta_of_file(path, key, name).or_else(|| {
        peerlite::RdbStore::backups_of(&peerlite::StoreConfig::new(path))
            .ok()?
            .into_iter()
            .filter(|b| b.verified)
            .find_map(|b| meta_of_file(&b.path, key, name))
    })
}

/// `name` from `peerlite_meta` of the SQLite file at `path` (`None` when the file, the table
/// or the key is missing, or the file cannot be read with `key`).
fn meta_of_file(path: &Path, key: Option<&str>, name: &str) -> Option<String> {
    use rusqlite::OpenFlags;
    if !path.is_file() {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).ok()?;
    // A wrong key is the open's to report, without SQLCipher's own log lines.
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE");
    if let Some(key) = key {
        conn.pragma_update(None, "key", key).ok()?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
    let exists: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'peerlite_meta'",
            [],
            |r| r.get(0),
        )
        .ok()?;
    if !exists {
        return None;
    }
    conn.query_row(
        "SELECT value FROM peerlite_meta WHERE key = ?1",
        [name],
        |r| r.get(0),
    )
    .ok()
}

/// The label to open the store at `path` with: `--level` when given, else the one the store
/// holds, else S1 (a new store).
pub fn for_store(explicit: Option<SecurityLevel>, path: &Path, key: Option<&str>) -> SecurityLevel {
    explicit
        .or_else(|| {
            stored_meta(path, key, "security_level")
                .and_then(|s| s.parse::<u8>().ok())
                .and_then(SecurityLevel::from_u8)
        })
        .unwrap_or_default()
}

/// How to open the key-value store `id` in `dir`: with the global `--key`, at `--level` or the
/// label it holds, as the kind (single version or device collaboration) it was created as.
pub fn kv_options(global: &crate::Global, dir: &Path, id: &str, create: bool) -> peerlite::Options {
    let path = dir.join(format!("{id}.db"));
    let key = global.key.as_deref();
    let kv_store_type = match stored_meta(&path, key, "kv_store_type").as_deref() {
        Some("device_collaboration") => peerlite::KvStoreType::DeviceCollaboration,
        _ => peerlite::KvStoreType::SingleVersion,
    };
    let options = peerlite::Options {
        create_if_missing: create,
        security_level: for_store(global.level, &path, key),
        kv_store_type,
        ..peerlite::Options::default()
    };
    match key {
        Some(key) => options.encrypted(key),
        None => options,
    }
}
