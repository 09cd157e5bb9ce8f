//! Signals. A command interrupted by SIGINT, SIGTERM or SIGHUP (or stopped by a closed pipe)
//! first removes the temporary directories it made, then dies as the signal asks — unless it
//! asked to stop gracefully ([`on_stop`], `peerlite serve`); SIGXFSZ
//! (a file grew past `ulimit -f`) is caught, so the write fails with EFBIG and the command
//! reports the I/O error (exit 2) instead of being killed without a word.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
use signal_hook::iterator::Signals;

/// Set once a stopping signal arrived (before its temporary directories are removed).
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What SIGINT, SIGTERM or SIGHUP does first, for a command that stops gracefully.
type StopHook = Box<dyn FnOnce() + Send>;
static STOP: Mutex<Option<StopHook>> = Mutex::new(None);

/// The first SIGINT, SIGTERM or SIGHUP calls `stop` instead of ending the process (a second
/// one ends it as usual).
pub fn on_stop(stop: impl FnOnce() + Send + 'static) {
    *STOP.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(stop));
}

/// Temporary directories to remove when the process is stopped.
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Installs the handlers; call first thing in `main`.
pub fn install() {
    // A handler of its own replaces SIGXFSZ's default action (kill and core dump): the write
    // that passed the limit returns EFBIG, which the command reports.
    if let Err(e) = signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false))) {
        eprintln!("warning: cannot catch SIGXFSZ: {e}");
    }
    match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                for signal in signals.forever() {
                    // A command that stops gracefully (`serve`) is asked once; a second
                    // signal stops it the hard way.
                    let stop = STOP.lock().unwrap_or_else(PoisonError::into_inner).take();
                    if let Some(stop) = stop {
                        stop();
                        continue;
                    }
                    INTERRUPTED.store(true, Ordering::SeqCst);
                    remove_temp_dirs();
                    // Die by the signal, as a shell expects of an interrupted command.
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    std::process::exit(128 + signal);
                }
            });
        }
        Err(e) => eprintln!("warning: cannot catch SIGINT/SIGTERM: {e}"),
    }
}

/// After a stopping signal, the signal's thread is ending the process: the command's own
/// thread waits for that instead of reporting errors its vanished files caused, or a success
/// that was cut short.
pub fn wait_if_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// Removes every registered temporary directory (the process is about to end). The command's
/// own thread may still be writing into one, so each removal is retried a bounded number of
/// times until the directory is gone.
pub fn remove_temp_dirs() {
    let dirs = std::mem::take(&mut *TEMP_DIRS.lock().unwrap_or_else(PoisonError::into_inner));
    for dir in dirs {
        for _ in 0..50 {
            let _ = std::fs::remove_dir_all(&dir);
            if !dir.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// A temporary directory that is removed when dropped, when the process is interrupted, and
/// when output stops at a closed pipe.
pub struct TempDir(Option<tempfile::TempDir>);

impl TempDir {
    /// Makes one in the system's temporary directory.
    pub fn new(prefix: &str) -> std::io::Result<TempDir> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(std::env::temp_dir())?;
        TEMP_DIRS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dir.path().to_path_buf());
        Ok(TempDir(Some(dir)))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.0
            .as_ref()
            .map_or(Path::new(""), tempfile::TempDir::path)
    }

    /// Makes every later temporary file and directory of this process (the simulation's,
    /// say) inside this one, so they go with it.
    pub fn hold_all_temporary_files(&self) {
        // Only the first call takes effect; a command makes one such directory.
        let _ = tempfile::env::override_temp_dir(self.path());
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let path = dir.path().to_path_buf();
            let _ = dir.close();
            TEMP_DIRS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|p| *p != path);
        }
    }
}
