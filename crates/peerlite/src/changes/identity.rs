//! Which device a store is, and whether its identity rows can be trusted.
//!
//! A store keeps the device id it was created or first synced with:
//! peers attribute its rows to that id, so a silent change would make them hold this device's
//! rows twice, under two names. A store that has never synced takes the id it is first opened
//! with for syncing (what it captured so far is attributed to the new id — nobody has seen the
//! old one); a store that has synced under another id is refused, unless the caller asks to
//! re-identify, which also starts a new epoch (peers then read it from the start, as a device
//! they have never met).

use rusqlite::{Connection, OptionalExtension};

use super::registry;
use crate::error::{Error, Result};
use crate::store::StoreConfig;
use crate::store::meta;

/// The meta key recording the id a store first took part in a sync session under.
pub(crate) const SYNCED_AS: &str = "synced_as";

/// The identity rows of a store that takes part in sync — it has distributed tables (or their
/// clocks) — that are missing or malformed: `peerlite_meta`
/// itself, `store_id` (32 hex digits), `device_id` (not empty, and the device the clock
/// tables number as this one, index 0 of `peerlite_devices`), and `epoch` (32 hex digits, a
/// `.` and the hex time it began; a missing one counts once the store has stamped under this
/// build — it has the clock file — or synced). One line per problem, naming it; empty for a
/// store that does not sync, whose identity an open may still make.
pub(crate) fn damage(conn: &Connection, db: &std::path::Path) -> rusqlite::Result<Vec<String>> {
    use crate::store::schema::table_exists;
    let clocks: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name LIKE 'peerlite\\_clock\\_%' ESCAPE '\\')",
        [],
        |r| r.get(0),
    )?;
    // The database itself must show that it syncs: a new database beside the clock file of
    // the one it replaces has no identity yet, and gets one.
    if !(registry::exists(conn)? || clocks) {
        return Ok(Vec::new());
    }
    let sidecar = super::mark::path(db).exists();
    if !table_exists(conn, "peerlite_meta")? {
        return Ok(vec![
            "peerlite_meta (the store's identity) is missing".into(),
        ]);
    }
    let get = |key: &str| -> rusqlite::Result<Option<String>> {
        conn.query_row(
            "SELECT CAST(value AS TEXT) FROM peerlite_meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()
    };
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut out = Vec::new();
    match get("store_id")? {
        None => out.push("peerlite_meta has no store_id".into()),
        Some(v) if !(v.len() == 32 && is_hex(&v)) => {
            out.push(format!("peerlite_meta's store_id {v:?} is malformed"));
        }
        Some(_) => {}
    }
    let local: Option<String> = if table_exists(conn, "peerlite_devices")? {
        conn.query_row(
            "SELECT device FROM peerlite_devices WHERE idx = ?1",
            [super::state::LOCAL],
            |r| r.get(0),
        )
        .optional()?
    } else {
        None
    };
    match (get("device_id")?, local) {
        (None, _) => out.push("peerlite_meta has no device_id".into()),
        (Some(v), _) if v.trim().is_empty() => {
            out.push("peerlite_meta's device_id is empty".into());
        }
        (Some(v), Some(local)) if v != local => out.push(format!(
            "peerlite_meta's device_id {v:?} is not the device the clock tables number as this one ({local:?})"
        )),
        _ => {}
    }
    let stamped = sidecar || get(SYNCED_AS)?.is_some();
    match get("epoch")? {
        None if stamped => out.push("peerlite_meta has no epoch".into()),
        None => {}
        Some(v) => {
            let (id, since) = v.split_once('.').unwrap_or((&v, "0"));
            if !(id.len() == 32 && is_hex(id) && is_hex(since)) {
                out.push(format!("peerlite_meta's epoch {v:?} is malformed"));
            }
        }
    }
    Ok(out)
}

/// This store's device id for the open `config` describes (writing it when it changes).
///
/// A writable open of a store whose identity rows are damaged ([`damage`]) is refused with
/// 17050002 naming them, unless the caller asks to re-identify: making new ones would
/// silently turn the store into a device its peers have never met (its rows sent twice,
/// under two names). A restore of a backup (`peerlite restore`) brings them back.
pub(crate) fn settle(conn: &Connection, config: &StoreConfig, writable: bool) -> Result<String> {
    let path = config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    if writable && !config.reidentify {
        let problems = damage(conn, path).map_err(sql_err)?;
        if !problems.is_empty() {
            return Err(Error::OwnObjectsDamaged { problems });
        }
    }
    let stored = meta::get(conn, "device_id").map_err(sql_err)?;
    let device = match (config.device_id.clone(), stored.clone()) {
        (None, Some(s)) => s,
        (None, None) => meta::new_store_id(path),
        (Some(r), Some(s)) if r != s => {
            let synced = meta::get(conn, SYNCED_AS).map_err(sql_err)?;
            match synced {
                // It synced as the id asked for: only its `device_id` row went astray (a
                // restore brought back the id of a backup taken before the first sync).
                Some(as_) if as_ == r => r,
                Some(as_) if !config.reidentify => {
                    return Err(Error::DeviceIdChanged {
                        stored: as_,
                        requested: r,
                    });
                }
                Some(_) if writable => {
                    // A new identity is a device the peers have never met: a new epoch too.
                    conn.execute(
                        "DELETE FROM peerlite_meta WHERE key IN ('synced_as', 'epoch')",
                        [],
                    )
                    .map_err(sql_err)?;
                    r
                }
                _ => r,
            }
        }
        (Some(r), _) => r,
    };
    if writable && stored.as_deref() != Some(device.as_str()) {
        meta::set(conn, "device_id", &device).map_err(sql_err)?;
        if registry::exists(conn).map_err(sql_err)? {
            // Rows captured here are numbered as this device's: they follow the new id.
            registry::set_local_device(conn, &device).map_err(sql_err)?;
        }
    }
    Ok(device)
}

/// Records, once, the id under which the store takes part in sync sessions.
pub(crate) fn note_synced(conn: &Connection, device: &str) -> rusqlite::Result<()> {
    if meta::get(conn, SYNCED_AS)?.is_none() {
        meta::set(conn, SYNCED_AS, device)?;
    }
    Ok(())
}

/// The database's identity rows name `device` again, the id the open settled on, as a sync
/// session begins. Another process may have replaced the file under this open: `peerlite
/// restore` of a backup taken before the store first synced brings back the id the store was
/// created with, and the rows captured since would be sent under it — a device no peer
/// knows. Adopted back when the database has not synced under another id (what it captured
/// is this device's); refused with 17040009 when it has. Returns whether anything changed.
pub(crate) fn reassert(conn: &Connection, device: &str, db: &std::path::Path) -> Result<bool> {
    let sql_err = |e| Error::from_sqlite(e, db);
    let stored = meta::get(conn, "device_id").map_err(sql_err)?;
    let local = if registry::exists(conn).map_err(sql_err)? {
        conn.query_row(
            "SELECT device FROM peerlite_devices WHERE idx = ?1",
            [super::state::LOCAL],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(sql_err)?
    } else {
        None
    };
    if stored.as_deref() == Some(device) && local.as_deref().is_none_or(|l| l == device) {
        return Ok(false);
    }
    match meta::get(conn, SYNCED_AS).map_err(sql_err)? {
        Some(as_) if as_ != device => {
            return Err(Error::DeviceIdChanged {
                stored: as_,
                requested: device.to_owned(),
            });
        }
        _ => {}
    }
    tracing::warn!(?db, from = ?stored, to = device, "the database was replaced under this open (a restore?); it keeps syncing as this device");
    meta::set(conn, "device_id", device).map_err(sql_err)?;
    if local.is_some() {
        registry::set_local_device(conn, device).map_err(sql_err)?;
    }
    Ok(true)
}

/// The identity a database had before a restore replaced it: its `device_id` and the id it
/// synced as (`None` for either it lacks, or when the damaged database does not read).
#[derive(Debug, Default)]
pub(crate) struct Kept {
    device: Option<String>,
    synced_as: Option<String>,
}

/// Reads the identity to keep across a restore.
pub(crate) fn keep(conn: &Connection) -> Kept {
    Kept {
        device: meta::get(conn, "device_id").ok().flatten(),
        synced_as: meta::get(conn, SYNCED_AS).ok().flatten(),
    }
}

/// After a restore copied a backup in: the store stays the device it was. A backup carries
/// the id of its time — one taken before the first sync holds the random id the store was
/// created with — but a restore puts back data, not another device: peers would otherwise
/// receive what the store captures next under an id they have never met. (The restore also
/// starts a new epoch, so peers read the restored data from the start under this id.)
pub(crate) fn restore_kept(conn: &Connection, kept: &Kept, db: &std::path::Path) -> Result<()> {
    let sql_err = |e| Error::from_sqlite(e, db);
    let Some(device) = kept.device.as_deref() else {
        return Ok(());
    };
    meta::set(conn, "device_id", device).map_err(sql_err)?;
    match kept.synced_as.as_deref() {
        Some(as_) => meta::set(conn, SYNCED_AS, as_).map_err(sql_err)?,
        None => {
            conn.execute("DELETE FROM peerlite_meta WHERE key = ?1", [SYNCED_AS])
                .map_err(sql_err)?;
        }
    }
    if registry::exists(conn).map_err(sql_err)? {
        registry::set_local_device(conn, device).map_err(sql_err)?;
    }
    Ok(())
}
