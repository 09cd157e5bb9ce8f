//! Another program's connection that has opened a database file but not read it yet: the
//! `sqlite3` shell after `.open`. It holds the file's descriptor and no SQLite lock, so no
//! lock tells it is there; only its open files do.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{ShellOutput, sqlite3_shell, wait_for};

/// The `sqlite3` shell with `db` open and unread, waiting for its commands on stdin.
/// Killed when dropped unless [`UnreadShell::run`] ended it.
pub struct UnreadShell {
    child: Option<Child>,
}

impl UnreadShell {
    /// Starts the shell, opens `db` in it (`.open`, which reads nothing) and waits until the
    /// file is among the shell's open files (Linux: `/proc/<pid>/fd`; bounded).
    ///
    /// # Panics
    /// When the shell cannot be started or has not opened the file within 30 seconds.
    pub fn open(db: &Path) -> UnreadShell {
        let mut child = Command::new(sqlite3_shell())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the sqlite3 shell: {e}"));
        let open = format!(".open '{}'\n", db.display().to_string().replace('\'', "''"));
        let stdin = child.stdin.as_mut().unwrap_or_else(|| panic!("no stdin"));
        stdin
            .write_all(open.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to the sqlite3 shell: {e}"));
        let pid = child.id();
        let opened = wait_for(Duration::from_secs(30), || holds(pid, db));
        assert!(opened, "the sqlite3 shell did not open {}", db.display());
        UnreadShell { child: Some(child) }
    }

    /// The shell's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Runs `sql` (its first use of the file), ends the shell and returns what it printed.
    ///
    /// # Panics
    /// When the shell cannot be written to or waited for.
    pub fn run(mut self, sql: &str) -> ShellOutput {
        let mut child = self.child.take().unwrap_or_else(|| panic!("shell ended"));
        let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        stdin
            .write_all(format!("{sql}\n.quit\n").as_bytes())
            .unwrap_or_else(|e| panic!("writing to the sqlite3 shell: {e}"));
        drop(stdin);
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("waiting for the sqlite3 shell: {e}"));
        ShellOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for UnreadShell {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether process `pid` has the file at `path` open.
pub fn holds(pid: u32, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(file) = std::fs::metadata(path) else {
        return false;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == (file.dev(), file.ino()))
    })
}
