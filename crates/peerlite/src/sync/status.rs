//! What a sync session ended with, for one device: a typed status with a stable code, the
//! value behind ArkData's `[device, status]` pairs and `peerlite sync`'s `error[CODE]` lines.
//!
//! ```
//! use peerlite::sync::SyncStatus;
//!
//! assert_eq!(SyncStatus::Ok.code(), 0);
//! assert_eq!(SyncStatus::SecurityRefused.code(), 17040006);
//! assert_eq!(SyncStatus::from_code(17040006), SyncStatus::SecurityRefused);
//! assert!(SyncStatus::TimedOut.is_retryable());
//! ```

/// The outcome of a sync with one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SyncStatus {
    /// Every stream completed.
    #[default]
    Ok,
    /// No table syncs: none named is distributed on both sides (17040001).
    NotDistributed,
    /// A message was malformed or out of place (17040004).
    Protocol,
    /// Another store, protocol version, schema version or synced columns (17040005).
    Incompatible,
    /// The data's security label is above the peer's device level (17040006).
    SecurityRefused,
    /// The peer is not the device the channel proved, or another device answered (17040007).
    IdentityMismatch,
    /// The session made no progress before its time ran out (17040008).
    TimedOut,
    /// The receiving device's watermark lies before deletes the sender no longer remembers
    /// (tombstones purged past the retention): it needs a client reset (17040011).
    ResetRequired,
    /// The peer holds changes of this device's epoch that its database never issued: the
    /// database was put back from a copy of an earlier state (a file copy, a snapshot, a
    /// cloned device). It took a new epoch; the next sync sends its rows as that (17040012).
    RolledBack,
    /// A row is larger than a row can travel ([`MAX_ROW_BYTES`](super::MAX_ROW_BYTES)): it
    /// was left out, the rest was sent; it travels once changed to a smaller size (17040013).
    RowTooLarge,
    /// The store on one side was locked by another writer (an app holding a long write
    /// transaction) longer than the sync waits: nothing was lost; a later sync goes on
    /// (14800024, SQLite's busy).
    Busy,
    /// A table is distributed in another mode on the peer (14800051).
    ModeMismatch,
    /// The device could not be reached (a network code from the driver, e.g. 17060007).
    Unreachable(u32),
    /// The channel refused the device, or the device refused this one (a network code).
    Untrusted(u32),
    /// Another failure, with its error code (a local disk error, corruption, …).
    Failed(u32),
}

/// Codes of the statuses with a fixed one.
const FIXED: [(SyncStatus, u32); 12] = [
    (SyncStatus::Ok, 0),
    (SyncStatus::NotDistributed, 17040001),
    (SyncStatus::Protocol, 17040004),
    (SyncStatus::Incompatible, 17040005),
    (SyncStatus::SecurityRefused, 17040006),
    (SyncStatus::IdentityMismatch, 17040007),
    (SyncStatus::TimedOut, 17040008),
    (SyncStatus::ResetRequired, 17040011),
    (SyncStatus::RolledBack, 17040012),
    (SyncStatus::RowTooLarge, 17040013),
    (SyncStatus::Busy, 14800024),
    (SyncStatus::ModeMismatch, 14800051),
];

impl SyncStatus {
    /// The stable numeric code (0 for success).
    pub fn code(self) -> u32 {
        match self {
            SyncStatus::Unreachable(c) | SyncStatus::Untrusted(c) | SyncStatus::Failed(c) => c,
            fixed => FIXED
                .iter()
                .find(|(s, _)| *s == fixed)
                .map_or(0, |(_, c)| *c),
        }
    }

    /// The status a code stands for (an `Abort` from a peer carries only the code).
    pub fn from_code(code: u32) -> SyncStatus {
        FIXED
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(SyncStatus::Failed(code), |(s, _)| *s)
    }

    /// True for success.
    pub fn is_ok(self) -> bool {
        self == SyncStatus::Ok
    }

    /// True when trying again later may succeed without anyone changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            SyncStatus::TimedOut | SyncStatus::Unreachable(_) | SyncStatus::Busy
        )
    }
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self {
            SyncStatus::Ok => "ok",
            SyncStatus::NotDistributed => "no table is distributed on both devices",
            SyncStatus::Protocol => "protocol error",
            SyncStatus::Incompatible => "incompatible peer",
            SyncStatus::SecurityRefused => "refused by security level",
            SyncStatus::IdentityMismatch => "identity mismatch",
            SyncStatus::TimedOut => "timed out",
            SyncStatus::ResetRequired => "client reset required",
            SyncStatus::RolledBack => "database put back from a copy: new epoch",
            SyncStatus::RowTooLarge => "row too large to sync",
            SyncStatus::Busy => "store locked by another writer, retry",
            SyncStatus::ModeMismatch => "distributed in another mode",
            SyncStatus::Unreachable(_) => "unreachable",
            SyncStatus::Untrusted(_) => "untrusted",
            SyncStatus::Failed(_) => "failed",
        };
        f.write_str(what)
    }
}

/// Tests and scripts compare statuses with codes (`status == 0`).
impl PartialEq<u32> for SyncStatus {
    fn eq(&self, code: &u32) -> bool {
        self.code() == *code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for (s, c) in FIXED {
            assert_eq!(s.code(), c);
            assert_eq!(SyncStatus::from_code(c), s);
        }
        let mut codes: Vec<u32> = FIXED.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), FIXED.len());
        assert_eq!(
            SyncStatus::from_code(14800028),
            SyncStatus::Failed(14800028)
        );
        assert_eq!(SyncStatus::Unreachable(17060007).code(), 17060007);
    }
}
