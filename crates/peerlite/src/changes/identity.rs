//! Which device a store is. A store keeps the device id it was created or first synced with:
//! peers attribute its rows to that id, so a silent change would make them hold this device's
//! rows twice, under two names. A store that has never synced takes the id it is first opened
//! with for syncing (what it captured so far is attributed to the new id — nobody has seen the
//! old one); a store that has synced under another id is refused, unless the caller asks to
//! re-identify, which also starts a new epoch (peers then read it from the start, as a device
//! they have never met).

use rusqlite::Connection;

use super::registry;
use crate::error::{Error, Result};
use crate::store::StoreConfig;
use crate::store::meta;

/// The meta key recording the id a store first took part in a sync session under.
pub(crate) const SYNCED_AS: &str = "synced_as";

/// This store's device id for the open `config` describes (writing it when it changes).
pub(crate) fn settle(conn: &Connection, config: &StoreConfig, writable: bool) -> Result<String> {
    let path = config.path();
    let sql_err = |e| Error::from_sqlite(e, path);
    let stored = meta::get(conn, "device_id").map_err(sql_err)?;
    let device = match (config.device_id.clone(), stored.clone()) {
        (None, Some(s)) => s,
        (None, None) => meta::new_store_id(path),
        (Some(r), Some(s)) if r != s => {
            let synced = meta::get(conn, SYNCED_AS).map_err(sql_err)?;
            match synced {
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
