//! The trust store: the devices this device pairs with (pairing = exchanging device ids, as
//! Syncthing does), with the name, the security level and the addresses recorded for each.
//!
//! Kept in `HOME/trust.json` (0600), rewritten atomically on every change. Each change first
//! re-reads the file, so commands run one after another never lose each other's entries. A file
//! that cannot be read as a trust store is never overwritten: the error says so.
//!
//! ```
//! use peerlite_net::{DeviceId, DeviceLevel, Home, TrustedDevice};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let home = Home::init(dir.path(), Some("phone"), DeviceLevel::Sl2).unwrap();
//! let peer = DeviceId::from_public_key(b"the laptop's key");
//! let mut trust = home.trust_store().unwrap();
//! trust
//!     .add(TrustedDevice::new(peer).name("laptop").level(DeviceLevel::Sl3).addr("127.0.0.1:7000"))
//!     .unwrap();
//! // Another process (or a later run) sees it.
//! let again = home.trust_store().unwrap();
//! assert_eq!(again.get(&peer).unwrap().level, DeviceLevel::Sl3);
//! // Adding it twice is refused with a code.
//! assert_eq!(trust.add(TrustedDevice::new(peer)).unwrap_err().code(), 17060014);
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::home::validate_name;
use crate::{DeviceId, DeviceLevel, Home, fsutil};

const TRUST_FILE: &str = "trust.json";
const FORMAT: u32 = 1;

/// A device this device trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    /// Its id.
    pub id: DeviceId,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The security level recorded for it at pairing (what access control uses).
    #[serde(default)]
    pub level: DeviceLevel,
    /// Where to dial it: `HOST:PORT` (IPv6 as `[ADDR]:PORT`).
    #[serde(default)]
    pub addrs: Vec<String>,
}

impl TrustedDevice {
    /// A device with no name, level SL1 and no address.
    pub fn new(id: DeviceId) -> TrustedDevice {
        TrustedDevice {
            id,
            name: None,
            level: DeviceLevel::default(),
            addrs: Vec::new(),
        }
    }

    /// With this name.
    pub fn name(mut self, name: impl Into<String>) -> TrustedDevice {
        self.name = Some(name.into());
        self
    }

    /// With this security level.
    pub fn level(mut self, level: DeviceLevel) -> TrustedDevice {
        self.level = level;
        self
    }

    /// With one more address.
    pub fn addr(mut self, addr: impl Into<String>) -> TrustedDevice {
        self.addrs.push(addr.into());
        self
    }

    /// Checks name and addresses; returns the device with its name trimmed.
    fn validated(mut self) -> Result<TrustedDevice> {
        self.name = self.name.as_deref().map(validate_name).transpose()?;
        for (i, addr) in self.addrs.iter().enumerate() {
            validate_addr(addr)?;
            if self.addrs[..i].contains(addr) {
                return Err(Error::InvalidArgument {
                    what: "address",
                    reason: format!("{addr} given twice"),
                });
            }
        }
        Ok(self)
    }
}

#[derive(Serialize, Deserialize)]
struct TrustFile {
    format: u32,
    devices: Vec<TrustedDevice>,
}

/// The trusted devices of one home.
#[derive(Debug, Clone)]
pub struct TrustStore {
    path: PathBuf,
    own: DeviceId,
    devices: BTreeMap<DeviceId, TrustedDevice>,
}

impl TrustStore {
    /// Reads the trust store of `home` (empty when it has none yet).
    ///
    /// # Errors
    /// [`Error::TrustStoreDamaged`] when `trust.json` is not a trust store;
    /// [`Error::UnsafePermissions`] when other users may write it or the home; [`Error::Io`].
    pub fn open(home: &Home) -> Result<TrustStore> {
        let mut store = TrustStore {
            path: home.dir().join(TRUST_FILE),
            own: home.id(),
            devices: BTreeMap::new(),
        };
        store.reload()?;
        Ok(store)
    }

    /// Reads the file again (another process may have changed it).
    ///
    /// # Errors
    /// As [`TrustStore::open`].
    pub fn reload(&mut self) -> Result<()> {
        // Whoever can write it decides which devices connect, at which level.
        if let Some(dir) = self.path.parent() {
            fsutil::refuse_shared_write(dir, "the home directory")?;
        }
        fsutil::refuse_shared_write(&self.path, "the trust store")?;
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            self.devices.clear();
            return Ok(());
        };
        let damaged = |reason: String| Error::TrustStoreDamaged {
            path: self.path.clone(),
            reason,
        };
        let file: TrustFile = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if file.format != FORMAT {
            return Err(damaged(format!(
                "format {} is not known to this peerlite",
                file.format
            )));
        }
        let mut devices = BTreeMap::new();
        for device in file.devices {
            let device = device.validated().map_err(|e| damaged(e.to_string()))?;
            let id = device.id;
            // `trust add` refuses it; a hand-edited file listing it would make a device sync
            // with itself.
            if id == self.own {
                return Err(damaged(format!(
                    "it lists this device's own id {id} (a device does not pair with itself)"
                )));
            }
            if devices.insert(id, device).is_some() {
                return Err(damaged(format!("device {id} is listed twice")));
            }
        }
        self.devices = devices;
        Ok(())
    }

    /// The device with this id.
    pub fn get(&self, id: &DeviceId) -> Option<&TrustedDevice> {
        self.devices.get(id)
    }

    /// All trusted devices, ordered by id.
    pub fn devices(&self) -> impl Iterator<Item = &TrustedDevice> {
        self.devices.values()
    }

    /// How many devices are trusted.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is trusted.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Trusts `device` and saves.
    ///
    /// # Errors
    /// [`Error::AlreadyTrusted`]; [`Error::InvalidArgument`] for a bad name or address, or this
    /// device's own id; errors of reading and writing the file.
    pub fn add(&mut self, device: TrustedDevice) -> Result<()> {
        let device = device.validated()?;
        if device.id == self.own {
            return Err(Error::InvalidArgument {
                what: "device id",
                reason: format!("{} is this device's own id", device.id),
            });
        }
        let _lock = self.lock()?;
        self.reload()?;
        if self.devices.contains_key(&device.id) {
            return Err(Error::AlreadyTrusted { id: device.id });
        }
        let mut devices = self.devices.clone();
        devices.insert(device.id, device);
        self.save(devices)
    }

    /// Stops trusting `id` and saves; returns what was recorded for it.
    ///
    /// # Errors
    /// [`Error::NotTrusted`]; errors of reading and writing the file.
    pub fn remove(&mut self, id: &DeviceId) -> Result<TrustedDevice> {
        let _lock = self.lock()?;
        self.reload()?;
        let mut devices = self.devices.clone();
        let removed = devices.remove(id).ok_or(Error::NotTrusted { id: *id })?;
        self.save(devices)?;
        Ok(removed)
    }

    /// Holds `trust.lock` beside the file for one read-modify-write: two processes adding or
    /// removing devices at once (a script and an app, say) would otherwise each write what
    /// they read, and one's change — a revocation — would be lost.
    fn lock(&self) -> Result<std::fs::File> {
        let path = self.path.with_file_name(".trust.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        file.lock().map_err(|e| Error::io("lock", &path, e))?;
        Ok(file)
    }

    fn save(&mut self, devices: BTreeMap<DeviceId, TrustedDevice>) -> Result<()> {
        let file = TrustFile {
            format: FORMAT,
            devices: devices.values().cloned().collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::TrustStoreDamaged {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        fsutil::write_atomic(&self.path, &json)?;
        // Only once the file holds it: a failed write leaves memory as the disk is.
        self.devices = devices;
        Ok(())
    }
}

/// The trusted devices as the channel sees them while it runs: a shared snapshot that the
/// certificate verifiers read during every handshake, replaced when the trust store changes.
///
/// ```
/// use peerlite_net::{DeviceId, TrustSet, TrustedDevice};
///
/// let peer = DeviceId::from_public_key(b"key");
/// let set = TrustSet::default();
/// assert!(set.get(&peer).is_none());
/// set.replace([TrustedDevice::new(peer)]);
/// assert!(set.get(&peer).is_some());
/// set.remove(&peer);
/// assert!(set.get(&peer).is_none());
/// set.insert(TrustedDevice::new(peer));
/// assert!(set.get(&peer).is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustSet {
    devices: Arc<RwLock<BTreeMap<DeviceId, TrustedDevice>>>,
}

impl TrustSet {
    /// The devices of `store`.
    pub fn from_store(store: &TrustStore) -> TrustSet {
        let set = TrustSet::default();
        set.replace(store.devices().cloned());
        set
    }

    /// Replaces the whole set (connections already open stay open until
    /// [`Node::enforce_trust`](crate::Node::enforce_trust) closes those it no longer admits).
    pub fn replace(&self, devices: impl IntoIterator<Item = TrustedDevice>) {
        let devices: BTreeMap<_, _> = devices.into_iter().map(|d| (d.id, d)).collect();
        // A panic elsewhere while holding the lock cannot leave a half-written map (we swap
        // whole maps), so a poisoned lock is still safe to use.
        *self.devices.write().unwrap_or_else(|e| e.into_inner()) = devices;
    }

    /// Trusts one more device (or updates what is recorded for it).
    pub fn insert(&self, device: TrustedDevice) {
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(device.id, device);
    }

    /// Stops trusting a device for new handshakes; returns what was recorded for it.
    pub fn remove(&self, id: &DeviceId) -> Option<TrustedDevice> {
        self.devices
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    /// The trusted device with this id.
    pub fn get(&self, id: &DeviceId) -> Option<TrustedDevice> {
        self.devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Every trusted device, by id.
    pub fn devices(&self) -> Vec<TrustedDevice> {
        self.devices
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Checks `HOST:PORT` (IPv6 as `[ADDR]:PORT`, port 1–65535).
///
/// # Errors
/// [`Error::InvalidArgument`] saying what is wrong.
pub fn validate_addr(addr: &str) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidArgument {
        what: "address",
        reason: format!(
            "{}: {reason} (expected HOST:PORT, IPv6 as [ADDR]:PORT)",
            crate::error::excerpt(addr)
        ),
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
    let host = match host.strip_prefix('[') {
        Some(inner) => {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| invalid("unclosed ["))?;
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| invalid("not an IPv6 address in brackets"))?;
            inner
        }
        None if host.contains(':') => return Err(invalid("IPv6 addresses need brackets")),
        None => host,
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    if host.len() > 253 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("not a host name"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(invalid("port must be 1-65535")),
    }
}
