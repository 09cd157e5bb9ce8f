//! The bench's processes: `peerlite` children (device init, trust, stores), the receiving
//! `peerlite serve`, and the sending node in this process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use peerlite::RdbStore;
use peerlite::sync::{DeviceResult, SyncMode};
use peerlite_net::{DeviceId, Home, Node, Traffic};

use super::super::measure::time;
use super::{CHILD_PATIENCE, CREATE, DB, SYNC_TIMEOUT, TABLE};
use crate::Global;
use crate::cmd::net::{self, NodeArgs};
use crate::cmd::target::{Location, Opened};

/// Runs this executable with `args`; returns its stdout (fails with its stderr).
pub(super) fn cli(args: &[&std::ffi::OsStr]) -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .env_remove("PEERLITE_HOME")
        .env_remove("PEERLITE_KEY")
        .args(args)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let shown = || {
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    };
    anyhow::ensure!(
        out.status.success(),
        "`peerlite {}` failed ({}): {}",
        shown(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One device of the bench: its directory, home, id and database.
pub(super) struct Device {
    pub(super) home: PathBuf,
    pub(super) id: String,
    pub(super) db: PathBuf,
}

impl Device {
    /// `peerlite device init`, then the table made and distributed by `peerlite sql` and
    /// `peerlite distribute`.
    pub(super) fn new(root: &Path, name: &str) -> anyhow::Result<Device> {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        let home = dir.join("home");
        let id = cli(os!["device", "init", "--name", name, "--home", &home])?
            .trim()
            .to_owned();
        let db = dir.join(DB);
        cli(os!["sql", &db, CREATE])?;
        cli(os!["distribute", &db, TABLE])?;
        Ok(Device { home, id, db })
    }

    /// `peerlite trust add` of `other` (at `addr`).
    pub(super) fn trusts(&self, other: &Device, addr: Option<&str>) -> anyhow::Result<()> {
        let mut args: Vec<&std::ffi::OsStr> =
            os!["trust", "add", "--home", &self.home, &other.id].to_vec();
        if let Some(addr) = addr {
            args.extend_from_slice(os!["--addr", addr]);
        }
        cli(&args).map(|_| ())
    }
}

/// The receiving `peerlite serve` process; killed if the bench ends without stopping it.
pub(super) struct Receiver {
    child: Option<Child>,
    pub(super) addr: String,
    log: PathBuf,
}

impl Receiver {
    pub(super) fn start(
        device: &Device,
        root: &Path,
        batch_rows: usize,
    ) -> anyhow::Result<Receiver> {
        let log = root.join("receiver.log");
        let exe = std::env::current_exe()?;
        let mut child = Command::new(&exe)
            .env_remove("PEERLITE_HOME")
            .env_remove("PEERLITE_KEY")
            .args(["-v", "serve", "--no-mdns", "--listen", "127.0.0.1:0"])
            .args(["--batch-rows", &batch_rows.to_string()])
            .arg("--home")
            .arg(&device.home)
            .arg("--db")
            .arg(&device.db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        let stdout = child.stdout.take().context("the receiver's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut receiver = Receiver {
            child: Some(child),
            addr: String::new(),
            log,
        };
        let line = rx.recv_timeout(CHILD_PATIENCE).unwrap_or_default();
        match line.trim().strip_prefix("listening on ") {
            Some(addr) => receiver.addr = addr.to_owned(),
            None => anyhow::bail!(
                "the receiver did not start (it printed {line:?}); its log: {}",
                receiver.log_text()
            ),
        }
        Ok(receiver)
    }

    pub(super) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The process's peak resident memory (VmHWM), in bytes; `None` without /proc.
    pub(super) fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// SIGTERM (through `kill`, as a user stops it), then waits for a clean exit.
    pub(super) fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid}: {status}");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "the receiver stopped with {status}; its log: {}",
                    self.log_text()
                );
                return Ok(());
            }
            if start.elapsed() > CHILD_PATIENCE {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the receiver did not stop within {CHILD_PATIENCE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The sending side: a node in this process, as `peerlite sync` builds it.
pub(super) struct Sender {
    rt: tokio::runtime::Runtime,
    node: Node,
    pub(super) store: RdbStore,
    name: String,
    peer: DeviceId,
}

impl Sender {
    pub(super) fn start(
        global: &Global,
        device: &Device,
        peer: &str,
        node_args: &NodeArgs,
    ) -> anyhow::Result<Sender> {
        let home = Home::open(&device.home).map_err(net::fail)?;
        let (_, node) = net::node(&home, node_args)?;
        let opened = net::open_for_node(global, &Location::Db(device.db.clone()), &home, false)?;
        let name = net::serve(&node, &opened)?;
        let Opened::Rdb(store) = opened else {
            anyhow::bail!("the sender's store is not relational");
        };
        let peer = net::parse_device(peer)?;
        let rt = net::runtime()?;
        rt.block_on(node.connect(peer)).map_err(net::fail)?;
        Ok(Sender {
            rt,
            node,
            store,
            name,
            peer,
        })
    }

    pub(super) fn traffic(&self) -> Traffic {
        self.node.endpoint().traffic()
    }

    /// Pushes to the receiver; returns how long it took, the bytes on the wire and the result.
    pub(super) fn push(&self) -> anyhow::Result<(Duration, Traffic, DeviceResult)> {
        let before = self.traffic();
        let (t, mut results) = time(|| {
            self.rt
                .block_on(self.node.sync_devices(
                    &[self.peer],
                    &self.name,
                    SyncMode::Push,
                    None,
                    SYNC_TIMEOUT,
                ))
                .map_err(net::net_error)
        })?;
        let wire = self.traffic().since(before);
        let (_, result) = results.pop().context("no result for the receiver")?;
        anyhow::ensure!(
            result.status.is_ok(),
            "the push failed: error[{}] {}: {}",
            result.status.code(),
            result.status,
            result.message.unwrap_or_default()
        );
        Ok((t, wire, result))
    }

    pub(super) fn stop(self) {
        self.rt.block_on(self.node.shutdown());
    }
}
