//! A store's device id is stable. Opening an existing store with another device id used to
//! rewrite it silently, so a peer that already held the store's rows under the old id got
//! them again under the new one — twice the rows, two devices for one. Now a store that never
//! synced takes the id it is opened with (nobody has seen the old one), a store that synced is
//! refused (17040009), and re-identifying is explicit and starts a new epoch.

use peerlite::sync::SyncMode;
use peerlite::{RdbStore, StoreConfig};

use crate::common::*;

fn reopen(
    root: &std::path::Path,
    dir: &str,
    device: &str,
    reidentify: bool,
) -> peerlite::Result<RdbStore> {
    RdbStore::open(
        StoreConfig::new(root.join(dir).join(STORE_FILE))
            .device_id(device)
            .clock(clock_at(T0 + 10_000))
            .reidentify(reidentify),
    )
}

#[test]
fn a_store_that_never_synced_takes_the_id_it_is_first_synced_with() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 0);
    let epoch = phone.epoch().unwrap();
    phone.close().unwrap();
    let phone = reopen(dir.path(), "phone", "phone-2", false).unwrap();
    assert_eq!(phone.device_id(), "phone-2");
    assert_eq!(
        phone.epoch().unwrap(),
        epoch,
        "nobody saw the old id: same epoch"
    );
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(has_from(&laptop, "phone-2"), expected_notes("p", 3));
    assert!(has_from(&laptop, "phone").is_empty());
}

#[test]
fn a_store_that_synced_keeps_its_id_unless_asked_to_reidentify() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 3, 0);
    sync(&phone, &laptop, SyncMode::Push);
    let epoch = phone.epoch().unwrap();
    phone.close().unwrap();
    let err = reopen(dir.path(), "phone", "phone-2", false).unwrap_err();
    assert_eq!(err.code(), 17040009, "{err}");
    // Nothing changed: it opens as before.
    let phone = reopen(dir.path(), "phone", "phone", false).unwrap();
    assert_eq!(phone.epoch().unwrap(), epoch);
    phone.close().unwrap();
    let phone =
        RdbStore::open(StoreConfig::new(dir.path().join("phone").join(STORE_FILE))).unwrap();
    assert_eq!(phone.device_id(), "phone", "without an id it keeps its own");
    phone.close().unwrap();
    // Re-identified: a new device with a new epoch; the laptop gets its rows as the new one's.
    let phone = reopen(dir.path(), "phone", "phone-2", true).unwrap();
    assert_eq!(phone.device_id(), "phone-2");
    assert_ne!(phone.epoch().unwrap(), epoch);
    sync(&phone, &laptop, SyncMode::Push);
    assert_eq!(has_from(&laptop, "phone-2"), expected_notes("p", 3));
    // And from now on it is that device.
    phone.close().unwrap();
    assert_eq!(
        reopen(dir.path(), "phone", "phone", false)
            .unwrap_err()
            .code(),
        17040009
    );
}

#[test]
fn serving_a_session_counts_as_syncing() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 1, 1);
    // The laptop only answered.
    sync(&phone, &laptop, SyncMode::Pull);
    laptop.close().unwrap();
    assert_eq!(
        reopen(dir.path(), "laptop", "laptop-2", false)
            .unwrap_err()
            .code(),
        17040009
    );
}

/// Adversary F22: a restore of a backup taken before the store first synced, done under a
/// running serve, left the store with the backup's `device_id` while `synced_as` named the
/// serving device. Opening it as that very device was then refused with "this store synced
/// as device X; it cannot become X silently": the same id twice, and no way out but
/// `--reidentify`. A store that synced as the id asked for is that device: it opens as it.
#[test]
fn a_store_that_synced_as_the_id_asked_for_opens_as_it_whatever_its_device_id_row_says() {
    let dir = tempfile::tempdir().unwrap();
    let (phone, laptop) = two(dir.path(), 2, 0);
    sync(&phone, &laptop, SyncMode::Push);
    let path = phone.path().to_path_buf();
    phone.close().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE peerlite_meta SET value = 'ab022e39f92b5af83d655797a9dd8232' WHERE key = 'device_id';
         UPDATE peerlite_devices SET device = 'ab022e39f92b5af83d655797a9dd8232' WHERE idx = 0;",
    )
    .unwrap();
    drop(conn);
    let phone = reopen(dir.path(), "phone", "phone", false).unwrap();
    assert_eq!(phone.device_id(), "phone");
    phone.close().unwrap();
    // Another id is still refused, and the message names two different ids.
    let err = reopen(dir.path(), "phone", "phone-2", false).unwrap_err();
    assert_eq!(err.code(), 17040009, "{err}");
    assert!(
        err.to_string().contains("device phone;") && err.to_string().contains("become phone-2"),
        "{err}"
    );
}
