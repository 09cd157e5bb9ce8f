//! What `peerlite bench sync` prints: a table beside the targets, or JSON.

use std::time::Duration;

use peerlite_net::Traffic;

/// One setting's deltas: the median time, the first (when kept apart), wire and raw bytes.
#[derive(Debug, serde::Serialize)]
pub(super) struct Delta {
    pub(super) compressed: bool,
    pub(super) ms: f64,
    pub(super) samples_ms: Vec<f64>,
    /// The same updates on the local copy, without sync (median).
    pub(super) local_update_ms: f64,
    pub(super) wire_bytes: u64,
    pub(super) wire_sent: u64,
    pub(super) wire_received: u64,
    pub(super) raw_bytes: u64,
    pub(super) wire_over_raw: f64,
}

const TARGET_RATE: f64 = 100_000.0;
const TARGET_RSS: u64 = 256 << 20;
const TARGET_DELTA_MS: f64 = 100.0;
const TARGET_WIRE: f64 = 1.5;

pub(super) struct Report {
    pub(super) n: usize,
    pub(super) changed: usize,
    pub(super) runs: usize,
    pub(super) initial: Duration,
    pub(super) initial_wire: Traffic,
    pub(super) copy: Duration,
    pub(super) rss_after_initial: Option<u64>,
    pub(super) peak: Option<u64>,
    pub(super) receiver_rows: i64,
    pub(super) first: Delta,
    pub(super) zstd: Delta,
    pub(super) plain: Delta,
}

impl Report {
    fn rate(&self) -> f64 {
        self.n as f64 / self.initial.as_secs_f64().max(1e-9)
    }

    fn copy_rate(&self) -> f64 {
        self.n as f64 / self.copy.as_secs_f64().max(1e-9)
    }

    fn ratio(&self) -> f64 {
        self.initial.as_secs_f64() / self.copy.as_secs_f64().max(1e-9)
    }

    pub(super) fn print_json(&self) {
        let json = serde_json::json!({
            "bench": "sync",
            "rows": self.n,
            "receiver_rows": self.receiver_rows,
            "initial": {
                "seconds": self.initial.as_secs_f64(),
                "rows_per_s": self.rate(),
                "wire_bytes": self.initial_wire.total(),
                "local_copy_seconds": self.copy.as_secs_f64(),
                "local_copy_rows_per_s": self.copy_rate(),
                "time_over_local_copy": self.ratio(),
                "met": self.rate() >= TARGET_RATE,
            },
            "receiver_peak_rss_bytes": self.peak,
            "receiver_peak_rss_after_initial_bytes": self.rss_after_initial,
            "receiver_peak_rss_met": self.peak.map(|p| p <= TARGET_RSS),
            "delta": {
                "rows": self.changed,
                "runs": self.runs,
                "first_after_initial": self.first,
                "zstd": self.zstd,
                "none": self.plain,
                "ms_met": self.zstd.ms <= TARGET_DELTA_MS && self.plain.ms <= TARGET_DELTA_MS,
                "wire_met": self.plain.wire_over_raw <= TARGET_WIRE,
            },
        });
        crate::cmd::print_json(&json);
    }

    pub(super) fn print_table(&self) {
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20));
        let verdict = |ok: bool| (if ok { "met" } else { "MISSED" }).to_owned();
        let dash = || "-".to_owned();
        println!(
            "peerlite bench sync: {} rows of ~100 bytes (account: integer key, 4 text, 2 integer columns), device-collaboration table;",
            self.n
        );
        println!(
            "two processes over loopback TLS: an in-process node pushes to `peerlite serve`; deltas: median of {} runs",
            self.runs
        );
        let header = ["workload", "time", "result", "target", "verdict"].map(String::from);
        let mut cells = vec![
            vec![
                format!("initial sync {} rows", self.n),
                format!("{:.3} s", self.initial.as_secs_f64()),
                format!("{:.0} rows/s", self.rate()),
                format!(">= {TARGET_RATE:.0} rows/s"),
                verdict(self.rate() >= TARGET_RATE),
            ],
            vec![
                "  local INSERT … SELECT copy".into(),
                format!("{:.3} s", self.copy.as_secs_f64()),
                format!(
                    "{:.0} rows/s (sync {:.2}x its time)",
                    self.copy_rate(),
                    self.ratio()
                ),
                dash(),
                dash(),
            ],
            vec![
                "  wire, initial (zstd)".into(),
                dash(),
                mib(self.initial_wire.total()),
                dash(),
                dash(),
            ],
            vec![
                "receiver peak RSS (VmHWM)".into(),
                dash(),
                self.peak.map_or("n/a".into(), mib),
                format!("<= {}", mib(TARGET_RSS)),
                self.peak.map_or("n/a".into(), |p| verdict(p <= TARGET_RSS)),
            ],
        ];
        for (label, d) in [
            ("zstd", &self.zstd),
            ("no compression", &self.plain),
            ("first after initial, zstd", &self.first),
        ] {
            let timed = label != "first after initial, zstd";
            cells.push(vec![
                format!("delta {} rows, {label}", self.changed),
                format!("{:.1} ms (local UPDATE {:.1} ms)", d.ms, d.local_update_ms),
                format!(
                    "wire {} B / raw {} B = {:.2}x",
                    d.wire_bytes, d.raw_bytes, d.wire_over_raw
                ),
                if timed {
                    format!("<= {TARGET_DELTA_MS:.0} ms")
                } else {
                    dash()
                },
                if timed {
                    verdict(d.ms <= TARGET_DELTA_MS)
                } else {
                    dash()
                },
            ]);
            if !d.compressed {
                cells.push(vec![
                    "  wire vs raw, no compression".into(),
                    dash(),
                    format!("{:.2}x", d.wire_over_raw),
                    format!("<= {TARGET_WIRE:.1}x"),
                    verdict(d.wire_over_raw <= TARGET_WIRE),
                ]);
            }
        }
        println!("{}", crate::output::table(&header, &cells));
    }
}
