//! Logs: the library's and the network's `tracing` events go to stderr, one line each. By
//! default warnings and errors only (a command's output stays its own); `-v` adds what
//! happens (connections, refusals, finished syncs), `-vv` the details; `RUST_LOG` filters
//! further (`RUST_LOG=peerlite_net=debug`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber for this process; call once, before any command runs.
pub fn install(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    if let Err(e) = installed {
        eprintln!("warning: logging is not available: {e}");
    }
}
