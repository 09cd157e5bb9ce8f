//! Whether another process has a file open: the swap's proof that no connection of another
//! program holds the old database without a lock.
//!
//! SQLite's locks only show connections that have read the database. A connection that opened
//! the file but has not read it yet holds a descriptor and no lock; if the file is renamed
//! over, its first read takes the old file with the new file's `-wal` and `-shm` (found by
//! path), and its writes land in the new database: a mix. Its descriptor is visible in
//! `/proc/<pid>/fd`, so the swap looks there (Linux) and copies instead when anybody has it.

use std::path::Path;

/// What a look at every process's open files found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holders {
    /// No other process has the file open (as far as this process may see).
    None,
    /// This process (pid) has it open.
    Found(u32),
    /// The open files of other processes cannot be listed here (no `/proc`).
    Unknown,
}

/// Looks through every other process's open descriptors for the file `id` (device, inode).
///
/// Bounded: each process directory and each descriptor is looked at once. Processes that end
/// while being looked at, and those whose descriptors this process may not read (another
/// user's, without privileges), are skipped: they are out of its sight.
/// This process is skipped too: its own connections share descriptors (SQLite keeps those of
/// closed connections while a lock is held and hands them to the next open), so they cannot
/// be told apart; the store's own connections reopen when their file is replaced
/// (`store::connection::open`). So are its children that have not started their program
/// yet ([`forked_from_us`]).
#[cfg(target_os = "linux")]
pub(crate) fn others_holding(id: (u64, u64)) -> Holders {
    use std::os::unix::fs::MetadataExt;
    let me = std::process::id();
    // `/proc` mounted and showing descriptors, or nothing can be told.
    if std::fs::read_dir("/proc/self/fd").is_err() {
        return Holders::Unknown;
    }
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return Holders::Unknown;
    };
    for process in processes.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            // The link's target, followed: the open file itself (even when renamed or gone).
            if std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == id) {
                if forked_from_us(&process.path(), me) {
                    break;
                }
                return Holders::Found(pid);
            }
        }
    }
    Holders::None
}

/// A child of this process that has not started another program yet (same executable): a
/// process being spawned holds copies of this process's descriptors for that moment, and
/// they close when it starts its program (SQLite opens with `O_CLOEXEC`). They are ours.
#[cfg(target_os = "linux")]
fn forked_from_us(process: &Path, me: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = std::fs::read_to_string(process.join("status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|p| p.trim().parse::<u32>().ok())
        });
    let exe = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    parent == Some(me)
        && exe(&process.join("exe")).is_some()
        && exe(&process.join("exe")) == exe(Path::new("/proc/self/exe"))
}

/// Without `/proc` nothing can be told.
#[cfg(not(target_os = "linux"))]
pub(crate) fn others_holding(_id: (u64, u64)) -> Holders {
    Holders::Unknown
}

/// [`others_holding`] the file at `path`; `Unknown` when it cannot be looked at.
pub(crate) fn others_holding_path(path: &Path) -> Holders {
    match crate::store::connection::file_id(path) {
        Some(id) => others_holding(id),
        None => Holders::Unknown,
    }
}

/// No other process has the file at `path` open ([`others_holding`]); why not otherwise.
pub(crate) fn nobody_else_has(path: &Path) -> std::result::Result<(), String> {
    match others_holding_path(path) {
        Holders::None => Ok(()),
        Holders::Found(pid) => Err(format!(
            "another process (pid {pid}) has the database file open"
        )),
        Holders::Unknown => Err("the files other processes hold open cannot be listed here \
                                 (no /proc)"
            .into()),
    }
}

/// Crash trials' way to open the file between the last look and the rename: in debug builds,
/// with `PEERLITE_TEST_SWAP_GATE` naming a file, the swap waits (at most a minute) for it.
pub(crate) fn test_gate() {
    #[cfg(debug_assertions)]
    if let Some(gate) = std::env::var_os("PEERLITE_TEST_SWAP_GATE") {
        tracing::debug!(step = "gate", "restore step");
        let gate = std::path::PathBuf::from(gate);
        for _ in 0..60_000 {
            if gate.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A child process holding a file is found; the file of nobody else is not; this
    /// process's own descriptors are not counted.
    #[test]
    fn a_child_holding_the_file_is_found_and_our_own_descriptor_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        std::fs::write(&path, b"x").unwrap();
        let _ours = std::fs::File::open(&path).unwrap();
        assert_eq!(others_holding_path(&path), Holders::None);
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 3<\"$0\"; read line")
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        // Bounded: the shell opens the file at once; a thousand looks is ample.
        let found = (0..1000).any(|_| {
            let found = others_holding_path(&path) == Holders::Found(pid);
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            found
        });
        drop(child.stdin.take());
        child.wait().unwrap();
        assert!(found, "the child's descriptor was not found");
        assert_eq!(others_holding_path(&path), Holders::None, "after it ended");
    }
}
