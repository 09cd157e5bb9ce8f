//! `peerlite device init|id --home H`: this device's identity.
//!
//! `init` prints the new device id as its only stdout line; `id` prints it again. `init` never
//! replaces an existing key (exit 2, error[17060011]).

use super::net::{HomeArg, fail};
use super::print_json;
use crate::Global;
use peerlite_net::Home;

/// Arguments of `peerlite device`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Create this device's identity (key pair, id, name, security level) in --home
    /// (`--level SL1..SL5`, default SL1).
    Init {
        #[command(flatten)]
        home: HomeArg,
        /// A name for people (default: device- and the id's first group).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print this device's id.
    Id {
        #[command(flatten)]
        home: HomeArg,
    },
}

/// Runs `peerlite device`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let home = match args.command {
        Command::Init { home, name } => {
            let level = global.device_level.unwrap_or_default();
            Home::init(&home.home, name.as_deref(), level).map_err(fail)?
        }
        Command::Id { home } => home.open()?,
    };
    if global.json {
        print_json(&serde_json::json!({
            "id": home.id(), "name": home.name(), "level": home.level(),
        }));
    } else {
        println!("{}", home.id());
    }
    Ok(())
}
