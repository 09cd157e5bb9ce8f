//! Who a session talks to: the device the channel proved, and the device security level this
//! device recorded for it when they were paired — never what the peer's `Hello` claims.
//!
//! Access control follows ArkData's matrix: data labelled S_k goes to a device of level SL_n
//! only when k ≤ n (SL1: S1; SL2: S1–S2; SL3: S1–S3; SL4 and SL5: S1–S4).
//!
//! ```
//! use peerlite::SecurityLevel;
//! use peerlite::sync::{DeviceLevel, Peer};
//!
//! let tablet = Peer::new("tablet", DeviceLevel::Sl2);
//! assert!(tablet.level.admits(SecurityLevel::S2));
//! assert!(!tablet.level.admits(SecurityLevel::S3));
//! assert!(DeviceLevel::Sl5.admits(SecurityLevel::S4));
//! ```

use crate::store::SecurityLevel;

/// A device's security level (SL1–SL5), as recorded in the local trust store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceLevel {
    /// SL1: takes S1 data.
    Sl1 = 1,
    /// SL2: takes S1–S2.
    Sl2 = 2,
    /// SL3: takes S1–S3.
    Sl3 = 3,
    /// SL4: takes S1–S4.
    Sl4 = 4,
    /// SL5: takes S1–S4, like SL4.
    Sl5 = 5,
}

impl DeviceLevel {
    /// The level numbered `n` (1..=5).
    pub fn from_u8(n: u8) -> Option<DeviceLevel> {
        Some(match n {
            1 => DeviceLevel::Sl1,
            2 => DeviceLevel::Sl2,
            3 => DeviceLevel::Sl3,
            4 => DeviceLevel::Sl4,
            5 => DeviceLevel::Sl5,
            _ => return None,
        })
    }

    /// Its number.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Whether data labelled `label` may go to a device of this level.
    pub fn admits(self, label: SecurityLevel) -> bool {
        label.as_u8() <= self.as_u8()
    }

    /// The level that takes exactly the data of `label` and below (S_k → SL_k), for peers in
    /// one process whose level is their store's label.
    pub fn matching(label: SecurityLevel) -> DeviceLevel {
        DeviceLevel::from_u8(label.as_u8()).unwrap_or(DeviceLevel::Sl1)
    }
}

impl std::fmt::Display for DeviceLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SL{}", self.as_u8())
    }
}

/// The other side of a session, as this device knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Its device id, proven by the channel (TLS) — or, in one process, given by the caller.
    pub device: String,
    /// Its device security level, from this device's trust store.
    pub level: DeviceLevel,
}

impl Peer {
    /// A peer with a proven id and a recorded level.
    pub fn new(device: impl Into<String>, level: DeviceLevel) -> Peer {
        Peer {
            device: device.into(),
            level,
        }
    }
}
