//! Issue 9, item 14, for key-value stores: a store deleted and made again never got back the
//! entries it wrote while its clock ran ahead of its wall clock.
//!
//! The story: the laptop's clock runs four minutes ahead (legal: under the 5-minute clamp);
//! the phone receives an entry from it, so the phone's clock runs ahead too, and the phone
//! puts an entry, stamped ahead, and syncs it to the laptop. Then the phone's store is deleted
//! and made again (an app reinstalled) a second later: its new epoch began at its wall clock,
//! behind the entry's stamp, so the laptop took the entry for one the new store held and never
//! sent it back. Whatever the clocks did, both kinds of store get back every entry they wrote.

use peerlite::KvStoreType;
use peerlite::sync::SyncMode;

use crate::common::*;

const AHEAD_MS: u64 = 4 * 60 * 1000;

#[test]
fn a_recreated_store_gets_back_the_entries_it_wrote_while_its_clock_ran_ahead() {
    for ty in [KvStoreType::SingleVersion, KvStoreType::DeviceCollaboration] {
        let dir = tempfile::tempdir().unwrap();
        let laptop = device_at(dir.path(), "laptop", options(ty), T0 + AHEAD_MS);
        let phone = device(dir.path(), "phone", ty);
        laptop.store.put("from_laptop", 1).unwrap();
        sync(&laptop, &phone, SyncMode::Push); // the phone's clock moves four minutes ahead
        phone.store.put("from_phone", "written ahead").unwrap();
        sync(&phone, &laptop, SyncMode::Push);
        phone.manager.delete_kv_store(STORE).unwrap();
        drop(phone);
        let phone = device_at(dir.path(), "phone", options(ty), T0 + 1_000);
        let (_, on_phone) = sync(&laptop, &phone, SyncMode::Push);
        assert_eq!(on_phone.received, 2, "{ty:?}: {on_phone:?}");
        assert_eq!(
            phone.store.get("from_phone").unwrap(),
            peerlite::KvValue::from("written ahead"),
            "{ty:?}"
        );
    }
}
