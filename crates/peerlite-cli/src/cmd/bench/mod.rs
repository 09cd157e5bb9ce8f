//! `peerlite bench …`: peerlite against the alternatives, side by side in one run, reported as
//! ratios (these machines are noisy; ratios from one run are what can be compared).

mod measure;
mod store;

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
}

/// Runs `peerlite bench`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Store(a) => store::run(global, a),
    }
}
