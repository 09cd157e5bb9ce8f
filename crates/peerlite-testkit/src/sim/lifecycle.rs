//! What happens to a device's databases besides writes: they are lost and made again with the
//! same device id (an app reinstalled), backed up, and restored from a backup followed by a
//! restart — and its wall clock jumps ahead and is set back.

use peerlite::{RestoreRequest, Result};

use super::device::Device;

const FILES: [&str; 2] = ["items.db", "notes.db"];

impl Device {
    /// Deletes both databases and makes them again, empty, with the same device id. The clock
    /// file beside them stays (a lost database file, not a lost device): the new databases'
    /// clocks resume past everything the old ones issued.
    pub fn recreate(&mut self) -> Result<()> {
        self.items.close()?;
        self.notes.close()?;
        for file in FILES {
            for suffix in ["", "-wal", "-shm"] {
                let path = self.home.join(format!("{file}{suffix}"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(peerlite::Error::Io {
                            op: "deleting a simulated database",
                            path,
                            source,
                        });
                    }
                }
            }
        }
        let (items, notes) = Device::make_stores(&self.home, &self.id, &self.clock)?;
        self.items = items;
        self.notes = notes;
        Ok(())
    }

    /// Backs up both stores as `name`.
    pub fn backup(&self, name: &str) -> Result<()> {
        self.items.backup(name)?;
        self.notes.backup(name)?;
        Ok(())
    }

    /// Restores both stores from backup `name` (taken from this device, perhaps from a
    /// database it has re-created since), then restarts them: closes and opens them again.
    pub fn restore_and_restart(&mut self, name: &str) -> Result<()> {
        for store in [&self.items, &self.notes] {
            store.restore_with(RestoreRequest::new(name).allow_other_store())?;
            store.close()?;
        }
        self.items = Device::open_store(&self.home, &self.id, &self.clock, FILES[0])?;
        self.notes = Device::open_store(&self.home, &self.id, &self.clock, FILES[1])?;
        Ok(())
    }
}
