//! Device security levels SL1–SL5 (ArkData's device levels).
//!
//! A device's level says which data labels it may hold: data labelled S_k goes to a device of
//! level SL_n only when k <= n, and SL5 takes what SL4 takes (S1–S4). The level that counts for a
//! peer is the one this device recorded when it paired with it, never one the peer claims.
//!
//! ```
//! use peerlite_net::DeviceLevel;
//!
//! let level: DeviceLevel = "SL3".parse().unwrap();
//! assert_eq!(level, DeviceLevel::Sl3);
//! assert_eq!(level.to_string(), "SL3");
//! assert!(level.admits_label(3) && !level.admits_label(4));
//! assert_eq!(DeviceLevel::Sl5.highest_label(), 4);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A device security level.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub enum DeviceLevel {
    /// SL1, the default: S1 data only.
    #[default]
    #[serde(rename = "SL1")]
    Sl1,
    /// SL2: S1–S2.
    #[serde(rename = "SL2")]
    Sl2,
    /// SL3: S1–S3.
    #[serde(rename = "SL3")]
    Sl3,
    /// SL4: S1–S4.
    #[serde(rename = "SL4")]
    Sl4,
    /// SL5: S1–S4 (as SL4).
    #[serde(rename = "SL5")]
    Sl5,
}

/// The text is not one of `SL1` … `SL5`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a device security level (SL1, SL2, SL3, SL4 or SL5)")]
pub struct LevelError(pub String);

impl DeviceLevel {
    /// All levels, lowest first.
    pub const ALL: [DeviceLevel; 5] = [
        DeviceLevel::Sl1,
        DeviceLevel::Sl2,
        DeviceLevel::Sl3,
        DeviceLevel::Sl4,
        DeviceLevel::Sl5,
    ];

    /// 1..=5.
    pub fn as_u8(self) -> u8 {
        match self {
            DeviceLevel::Sl1 => 1,
            DeviceLevel::Sl2 => 2,
            DeviceLevel::Sl3 => 3,
            DeviceLevel::Sl4 => 4,
            DeviceLevel::Sl5 => 5,
        }
    }

    /// The highest data label (1..=4, for S1..S4) a device of this level may receive.
    pub fn highest_label(self) -> u8 {
        self.as_u8().min(4)
    }

    /// Whether data labelled S`label` (1..=4) may go to a device of this level.
    pub fn admits_label(self, label: u8) -> bool {
        label <= self.highest_label()
    }
}

impl fmt::Display for DeviceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SL{}", self.as_u8())
    }
}

impl FromStr for DeviceLevel {
    type Err = LevelError;

    /// `SL1` … `SL5`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceLevel::ALL
            .into_iter()
            .find(|l| l.to_string().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| LevelError(s.to_string()))
    }
}
