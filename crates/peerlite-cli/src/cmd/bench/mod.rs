//! `peerlite bench …`: peerlite against the alternatives, side by side in one run, reported as
//! ratios (these machines are noisy; ratios from one run are what can be compared).

mod backup;
mod changes;
mod measure;
mod restore;
mod store;
mod sync;
mod writer;

use crate::Global;

/// Arguments of `peerlite bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand, Debug)]
enum Which {
    /// Inserts, KV puts and KV gets: peerlite vs raw rusqlite.
    Store(store::Args),
    /// Verified online backup vs .backup, VACUUM INTO, cp and a naive stepped backup.
    Backup(backup::Args),
    /// Change capture cost and sync speed.
    Changes(changes::Args),
    /// Sync between two processes over loopback TLS: initial sync, peak memory, deltas.
    Sync(sync::Args),
    /// The second process of `bench backup` (commits every interval).
    #[command(hide = true)]
    Writer(writer::Args),
}

/// Runs `peerlite bench`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Store(a) => store::run(global, a),
        Which::Backup(a) => backup::run(global, a),
        Which::Changes(a) => changes::run(global, a),
        Which::Sync(a) => sync::run(global, a),
        Which::Writer(a) => writer::run(a),
    }
}
