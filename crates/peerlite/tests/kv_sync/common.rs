//! Fixtures shared by the key-value sync tests: devices (a manager in its own directory, a
//! clock the test drives, one store `settings`), sync helpers and entry listings.

use std::path::Path;
use std::sync::{Arc, Mutex};

use peerlite::changes::ManualClock;
use peerlite::sync::{DeviceResult, SyncMode, sync_in_memory};
use peerlite::{
    ChangeNotification, KvManager, KvStore, KvStoreType, KvValue, Options, SubscribeType,
};

/// The wall clock every test starts from (ms since the Unix epoch).
pub const T0: u64 = 1_700_000_000_000;

/// The store id: the same on every device.
pub const STORE: &str = "settings";

/// One device: its manager, its store and the clock its timestamps read.
pub struct Device {
    pub manager: KvManager,
    pub store: KvStore,
    pub clock: Arc<ManualClock>,
}

impl Device {
    /// Sets this device's wall clock to `T0 + ms`.
    pub fn at(&self, ms: u64) -> &Self {
        self.clock.set(T0 + ms);
        self
    }
}

/// The options of a store of type `ty`.
pub fn options(ty: KvStoreType) -> Options {
    Options {
        kv_store_type: ty,
        ..Options::default()
    }
}

/// A device `id` in `root/id` whose store has type `ty`, its clock at `T0`.
pub fn device(root: &Path, id: &str, ty: KvStoreType) -> Device {
    device_with(root, id, options(ty))
}

/// A device `id` in `root/id` whose store opens with `options`.
pub fn device_with(root: &Path, id: &str, options: Options) -> Device {
    device_at(root, id, options, T0)
}

/// A device whose clock shows `ms` when its store opens (a store re-created later).
pub fn device_at(root: &Path, id: &str, options: Options, ms: u64) -> Device {
    let clock = Arc::new(ManualClock::new(ms));
    let manager = KvManager::at(root.join(id))
        .unwrap()
        .device_id(id)
        .clock(clock.clone());
    let store = manager.get_kv_store(STORE, options).unwrap();
    Device {
        manager,
        store,
        clock,
    }
}

/// A single-version device.
pub fn single(root: &Path, id: &str) -> Device {
    device(root, id, KvStoreType::SingleVersion)
}

/// A device-collaboration device.
pub fn collab(root: &Path, id: &str) -> Device {
    device(root, id, KvStoreType::DeviceCollaboration)
}

/// One in-memory session from `a` to `b`; both sides must succeed.
pub fn sync(a: &Device, b: &Device, mode: SyncMode) -> (DeviceResult, DeviceResult) {
    let (ra, rb) = sync_in_memory(
        a.store.sync_store().unwrap(),
        b.store.sync_store().unwrap(),
        mode,
        None,
    )
    .unwrap();
    assert_eq!(ra.status, 0, "initiator: {ra:?}");
    assert_eq!(rb.status, 0, "responder: {rb:?}");
    (ra, rb)
}

/// PushPull from `a` to `b`, then from `b` to `a`.
pub fn sync_both_ways(a: &Device, b: &Device) {
    sync(a, b, SyncMode::PushPull);
    sync(b, a, SyncMode::PushPull);
}

/// Every local entry as (key, value), in key order.
pub fn entries(store: &KvStore) -> Vec<(String, KvValue)> {
    store
        .get_entries("")
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

/// Every entry of `device` as seen by a device-collaboration store, in key order.
pub fn device_entries(store: &KvStore, device: &str) -> Vec<(String, KvValue)> {
    store
        .get_entries_from_device(device, "")
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

/// Owned (key, value) pairs from literals.
pub fn pairs(list: &[(&str, KvValue)]) -> Vec<(String, KvValue)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Shorthand for a string value.
pub fn s(text: &str) -> KvValue {
    KvValue::String(text.to_owned())
}

/// The error code of a failed read (panics when it did not fail).
pub fn code_of<T: std::fmt::Debug>(r: peerlite::Result<T>) -> u32 {
    r.unwrap_err().code()
}

/// Records every notification of one kind.
pub fn record(store: &KvStore, kind: SubscribeType) -> Arc<Mutex<Vec<ChangeNotification>>> {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    store
        .on_data_change(kind, move |n: &ChangeNotification| {
            sink.lock().unwrap().push(n.clone());
        })
        .unwrap();
    heard
}

/// Takes what was recorded so far.
pub fn take(heard: &Arc<Mutex<Vec<ChangeNotification>>>) -> Vec<ChangeNotification> {
    std::mem::take(&mut *heard.lock().unwrap())
}

/// A single-version device whose store syncs from the start.
pub fn sv(root: &Path, id: &str) -> Device {
    let d = single(root, id);
    d.store.enable_sync().unwrap();
    d
}

/// A device-collaboration device whose store syncs from the start.
pub fn dc(root: &Path, id: &str) -> Device {
    let d = collab(root, id);
    d.store.enable_sync().unwrap();
    d
}
