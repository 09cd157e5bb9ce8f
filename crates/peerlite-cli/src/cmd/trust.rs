//! `peerlite trust add|list|remove --home H`: the devices this one pairs with.

use super::net::{HomeArg, fail};
use super::print_json;
use crate::Global;
use crate::output::{shown, table};
use peerlite_net::{DeviceId, TrustedDevice};

/// Arguments of `peerlite trust`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Trust a device: only trusted devices may connect (`--level SL1..SL5`: the level granted
    /// to it, which data labels it may receive; default SL1).
    Add {
        #[command(flatten)]
        home: HomeArg,
        /// The id the other device printed (`peerlite device id`).
        #[arg(value_name = "DEVICE_ID")]
        id: String,
        /// Where to reach it (repeatable; IPv6 as [ADDR]:PORT).
        #[arg(long = "addr", value_name = "HOST:PORT")]
        addrs: Vec<String>,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
    },
    /// List trusted devices.
    List {
        #[command(flatten)]
        home: HomeArg,
    },
    /// Stop trusting a device.
    Remove {
        #[command(flatten)]
        home: HomeArg,
        /// The device's id.
        #[arg(value_name = "DEVICE_ID")]
        id: String,
    },
}

/// Runs `peerlite trust`.
pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Add {
            home,
            id,
            addrs,
            name,
        } => {
            let level = global.device_level.unwrap_or_default();
            let id = parse_id(&id)?;
            let mut trust = home.open()?.trust_store().map_err(fail)?;
            let mut device = TrustedDevice::new(id).level(level);
            device.name = name;
            device.addrs = addrs;
            trust.add(device).map_err(fail)?;
            if global.json
                && let Some(device) = trust.get(&id)
            {
                print_json(&device_json(device));
            }
        }
        Command::List { home } => {
            let trust = home.open()?.trust_store().map_err(fail)?;
            if global.json {
                print_json(&trust.devices().map(device_json).collect());
            } else if !trust.is_empty() {
                let header = ["id", "name", "level", "addresses"].map(String::from);
                // Names and addresses are the user's (or a hand-edited trust.json's) text:
                // escaped like any cell, so a bidi override cannot reorder the line.
                let rows: Vec<Vec<String>> = trust
                    .devices()
                    .map(|d| {
                        vec![
                            d.id.to_string(),
                            d.name.as_deref().map_or_else(|| "-".into(), shown),
                            d.level.to_string(),
                            if d.addrs.is_empty() {
                                "-".into()
                            } else {
                                shown(&d.addrs.join(","))
                            },
                        ]
                    })
                    .collect();
                println!("{}", table(&header, &rows));
            }
        }
        Command::Remove { home, id } => {
            let id = parse_id(&id)?;
            let removed = home
                .open()?
                .trust_store()
                .and_then(|mut trust| trust.remove(&id))
                .map_err(fail)?;
            if global.json {
                print_json(&device_json(&removed));
            }
        }
    }
    Ok(())
}

fn parse_id(text: &str) -> anyhow::Result<DeviceId> {
    DeviceId::parse(text).map_err(|e| fail(e.into()))
}

fn device_json(device: &TrustedDevice) -> serde_json::Value {
    serde_json::json!({
        "id": device.id, "name": device.name, "level": device.level, "addrs": device.addrs,
    })
}
