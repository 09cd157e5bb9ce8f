//! What `peerlite device` and `peerlite trust` share: the `--home` flag and how a
//! peerlite-net error is reported (`error[CODE]: …`, `hint: …`, exit 2).

use std::path::PathBuf;

use peerlite_net::{DeviceLevel, Home};

use crate::Exit;

/// `--home DIR`: the device home (identity and trust store).
#[derive(clap::Args, Debug)]
pub struct HomeArg {
    /// The device's home directory (its identity and trust store).
    #[arg(long, value_name = "DIR", env = "PEERLITE_HOME")]
    pub home: PathBuf,
}

impl HomeArg {
    /// Opens the identity in the home.
    pub fn open(&self) -> anyhow::Result<Home> {
        Home::open(&self.home).map_err(fail)
    }
}

/// Parses `--level SL1..SL5` (a bad value is a usage error).
pub fn parse_level(text: &str) -> Result<DeviceLevel, peerlite_net::LevelError> {
    text.parse()
}

/// Prints `error[CODE]: message` and `hint: …` for a network error and exits 2.
pub fn fail(err: peerlite_net::Error) -> anyhow::Error {
    eprintln!("error[{}]: {err}", err.code());
    eprintln!("hint: {}", err.hint());
    Exit(2).into()
}
