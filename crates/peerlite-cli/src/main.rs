//! `peerlite`: the command line for peerlite stores.
//!
//! Exit codes: 0 success, 1 usage error, 2 an operation failed (stderr has
//! `error[CODE]: message` and a hint), 3 a check found the database corrupted.

mod cmd;
mod hint;
mod logs;
mod output;
mod signals;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Local data that survives everything and follows the user.
#[derive(Parser, Debug)]
#[command(name = "peerlite", version, about, propagate_version = true)]
struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,

    /// Encryption key of the store (SQLCipher passphrase).
    // Its own id: subcommands have positionals named `key` (kv put KEY), and clap would
    // otherwise merge the two.
    #[arg(
        long = "key",
        id = "encryption_key",
        value_name = "KEY",
        global = true,
        env = "PEERLITE_KEY",
        hide_env_values = true
    )]
    encryption_key: Option<String>,

    /// A security level: S1..S4 is the data label a store this command creates gets (an
    /// existing store opens at the label it holds); SL1..SL5 is a device's level, for
    /// `device init` and `trust add`.
    #[arg(long, value_name = "S1..S4|SL1..SL5", value_parser = cmd::level::parse_level, global = true)]
    level: Option<cmd::level::LevelArg>,

    /// More log output on stderr: -v info, -vv debug (RUST_LOG filters further).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run SQL statements (all in one transaction); queries print their rows.
    Sql(cmd::sql::Args),
    /// Use a key-value store.
    Kv(cmd::kv::Args),
    /// Print the schema version of a database.
    Version(cmd::version::Args),
    /// Empty the write-ahead log into the database file now.
    Checkpoint(cmd::checkpoint::Args),
    /// Apply pending NNNN_name.sql migrations from a directory in one transaction.
    Migrate(cmd::migrate::Args),
    /// Back a store up (online, verified); prints the backup's path.
    Backup(cmd::backup::Args),
    /// List a store's backups, newest first.
    Backups(cmd::backups::Args),
    /// Restore a backup (verified first; the replaced data is kept as pre-restore).
    Restore(cmd::restore::Args),
    /// Delete backups by name; one line per name.
    DeleteBackup(cmd::delete_backup::Args),
    /// Check a store for corruption: `ok` (exit 0) or error[14800011] (exit 3).
    Check(cmd::check::Args),
    /// Rebuild a corrupted store from its newest verified backup, salvaging readable rows.
    Repair(cmd::repair::Args),
    /// Make tables distributed (device collaboration, or single version with a sync schema).
    Distribute(cmd::distribute::Args),
    /// Validate a sync_schema.json against a database, changing nothing (exit 0 valid, 2 not).
    SchemaCheck(cmd::schema_check::Args),
    /// List captured changes (key, origin, timestamps, sequence, tombstone).
    Changes(cmd::changes::Args),
    /// List the remote rows sync could not apply, or settle them (--resolve ID --keep ...).
    Conflicts(cmd::conflicts::Args),
    /// Simulate devices syncing over a faulty network; exit 0 only when they converge.
    Sim(cmd::sim::Args),
    /// Show the whole story in a temporary directory.
    Demo(cmd::demo::Args),
    /// Measure peerlite against the alternatives, side by side.
    Bench(cmd::bench::Args),
    /// This device's identity: `device init --home H`, `device id --home H`.
    Device(cmd::device::Args),
    /// The devices this one pairs with: `trust add|list|remove --home H`.
    Trust(cmd::trust::Args),
    /// Serve stores to trusted devices until SIGINT/SIGTERM; prints `listening on HOST:PORT`.
    Serve(cmd::serve::Args),
    /// Sync a store with trusted devices now; one line per device (`ID ok` / `ID error[CODE] …`).
    Sync(cmd::sync::Args),
    /// Query a distributed table on another device; prints its rows like `peerlite sql`.
    RemoteQuery(cmd::remote_query::Args),
    /// Print the table holding a device's rows of a device-collaboration table.
    TableName(cmd::table_name::Args),
    /// Where a store stands with its peers: epoch, watermarks, unsynced changes, tombstones.
    Status(cmd::status::StatusArgs),
    /// Purge tombstones past the retention now (`--older-than 0s`: every one).
    Purge(cmd::status::PurgeArgs),
    /// Client reset: re-seed the store from a device, recovering or dropping unsynced changes.
    Reset(cmd::reset::Args),
}

/// Options every command sees.
#[derive(Debug, Clone)]
pub struct Global {
    /// `--json` was given.
    pub json: bool,
    /// `--key` / `PEERLITE_KEY`.
    pub key: Option<String>,
    /// `--level S1..S4`: the label of a store the command creates.
    pub level: Option<peerlite::SecurityLevel>,
    /// `--level SL1..SL5`: a device's level (`device init`, `trust add`).
    pub device_level: Option<peerlite_net::DeviceLevel>,
}

/// A mistake in how the command was called (exit 1), as opposed to a failed operation.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An outcome with its own exit code (for example 3: a check found corruption).
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// Output cut short by a closed pipe (`peerlite changes DB | head`) is not an error: stop
/// quietly, as a command killed by SIGPIPE would, instead of printing a panic — after
/// removing the command's temporary directories.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("Broken pipe") {
            signals::remove_temp_dirs();
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    signals::install();
    quiet_on_broken_pipe();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Ok((Cli::from_arg_matches(&m)?, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let command = matches.subcommand_name().unwrap_or_default();
    if cli.encryption_key.as_deref() == Some("") {
        eprintln!(
            "error: the encryption key is empty (--key or PEERLITE_KEY): give the store's key, or unset PEERLITE_KEY for a store without one"
        );
        return ExitCode::from(1);
    }
    logs::install(cli.verbose);
    let for_devices = matches!(cli.command, Command::Device(_) | Command::Trust(_));
    let (level, device_level) = match cmd::level::split(cli.level, for_devices) {
        Ok(levels) => levels,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let global = Global {
        json: cli.json,
        key: cli.encryption_key,
        level,
        device_level,
    };
    let result = match cli.command {
        Command::Sql(args) => cmd::sql::run(&global, args),
        Command::Kv(args) => cmd::kv::run(&global, args),
        Command::Version(args) => cmd::version::run(&global, args),
        Command::Checkpoint(args) => cmd::checkpoint::run(&global, args),
        Command::Status(args) => cmd::status::status(&global, args),
        Command::Purge(args) => cmd::status::purge(&global, args),
        Command::Reset(args) => cmd::reset::run(&global, args),
        Command::Migrate(args) => cmd::migrate::run(&global, args),
        Command::Backup(args) => cmd::backup::run(&global, args),
        Command::Backups(args) => cmd::backups::run(&global, args),
        Command::Restore(args) => cmd::restore::run(&global, args),
        Command::DeleteBackup(args) => cmd::delete_backup::run(&global, args),
        Command::Check(args) => cmd::check::run(&global, args),
        Command::Repair(args) => cmd::repair::run(&global, args),
        Command::Distribute(args) => cmd::distribute::run(&global, args),
        Command::SchemaCheck(args) => cmd::schema_check::run(&global, args),
        Command::Changes(args) => cmd::changes::run(&global, args),
        Command::Conflicts(args) => cmd::conflicts::run(&global, args),
        Command::Sim(args) => cmd::sim::run(&global, args),
        Command::Demo(args) => cmd::demo::run(&global, args),
        Command::Bench(args) => cmd::bench::run(&global, args),
        Command::Device(args) => cmd::device::run(&global, args),
        Command::Trust(args) => cmd::trust::run(&global, args),
        Command::Serve(args) => cmd::serve::run(&global, args),
        Command::Sync(args) => cmd::sync::run(&global, args),
        Command::RemoteQuery(args) => cmd::remote_query::run(&global, args),
        Command::TableName(args) => cmd::table_name::run(&global, args),
    };
    // An interrupted command dies by its signal: whatever the work did after its files were
    // taken away (an error about a vanished directory, say) is not the story to tell.
    signals::wait_if_interrupted();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err, command),
    }
}

/// Prints an error the documented way and picks the exit code.
fn report(err: &anyhow::Error, command: &str) -> ExitCode {
    if let Some(Exit(code)) = err.downcast_ref::<Exit>() {
        return ExitCode::from(*code);
    }
    if let Some(usage) = err.downcast_ref::<UsageError>() {
        eprintln!("error: {usage}");
        return ExitCode::from(1);
    }
    match err
        .chain()
        .find_map(|e| e.downcast_ref::<peerlite::Error>())
    {
        Some(peerlite::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            // The reader of the output went away (`peerlite sql DB … | head`): stop quietly.
            signals::remove_temp_dirs();
            ExitCode::from(141)
        }
        Some(e) => {
            let context: Vec<String> = err
                .chain()
                .take_while(|c| c.downcast_ref::<peerlite::Error>().is_none())
                .map(ToString::to_string)
                .collect();
            let prefix = if context.is_empty() {
                String::new()
            } else {
                format!("{}: ", context.join(": "))
            };
            eprintln!("error[{}]: {prefix}{e}", e.code());
            eprintln!("hint: {}", hint::for_error(e, command));
            ExitCode::from(2)
        }
        None => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
