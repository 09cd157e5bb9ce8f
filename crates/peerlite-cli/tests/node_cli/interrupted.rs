//! A sync interrupted by killing the serving process (SIGKILL, mid-batch) resumes on the next
//! sync without losing or duplicating a row; and a large initial sync keeps the receiving
//! process's memory far below the size of the data (one batch in flight, bounded queues).

use serde_json::json;

use crate::common::*;

/// Inserts `n` notes of about `size` bytes each on `d` in one statement.
fn fill(d: &Device, n: u64, size: usize) {
    sql(
        &d.db,
        &[&format!(
            "INSERT INTO note(text, shop) SELECT printf('%.*c', {size}, 'x') || i, 'north' FROM (WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n}) SELECT i FROM k)"
        )],
    );
}

fn count(d: &Device, table: &str) -> i64 {
    let exists = d.rows(&format!(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"
    ));
    if exists != vec![json!([1])] {
        return 0;
    }
    d.rows(&format!("SELECT count(*) FROM \"{table}\""))[0][0]
        .as_i64()
        .unwrap()
}

#[test]
fn a_sync_cut_by_killing_the_peer_resumes_without_loss_or_duplicates() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    const N: i64 = 40_000;
    fill(&a, N as u64, 40);
    let served = serve_for(&a, &b, "SL1", "SL1");
    let table = b.table_of(&a);
    // Small batches: many transactions, so the kill lands between and inside them.
    let sync = std::process::Command::new(assert_cmd::cargo::cargo_bin("peerlite"))
        .args(["sync", "--push", "--batch-rows", "100", "--home"])
        .arg(&a.home)
        .arg(&a.db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("rows to arrive at b", || count(&b, &table) > 0);
    served.kill();
    let out = sync.wait_with_output().unwrap();
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(2), "{line}");
    assert!(
        line.starts_with(&format!("{} error[170600", b.id)),
        "{line}"
    );
    let partial = count(&b, &table);
    assert!(partial > 0 && partial < N, "{partial} rows after the kill");
    // b comes back on another port; the next sync finishes the job.
    let served = b.serve(&[]);
    a.distrusts(&b);
    a.trusts(&b, "SL1", Some(&served.addr));
    let done: serde_json::Value = serde_json::from_str(&a.sync_ok(&["--push", "--json"])).unwrap();
    let sent = done[0]["sent"].as_i64().unwrap();
    assert!(sent < N, "the second sync resent everything ({sent} rows)");
    assert_eq!(
        b.rows(&format!(
            "SELECT count(*), count(DISTINCT id), sum(length(text)) FROM \"{table}\""
        )),
        a.rows("SELECT count(*), count(DISTINCT id), sum(length(text)) FROM note")
    );
    assert_eq!(count(&b, &table), N);
    assert!(served.stop().success());
}

/// Peak resident memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[test]
fn a_large_initial_sync_keeps_the_receivers_memory_bounded() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    const N: u64 = 200_000;
    fill(&a, N, 500);
    let data = std::fs::metadata(&a.db).unwrap().len();
    assert!(data > 100 << 20, "{data} bytes of data");
    let served = serve_for(&a, &b, "SL1", "SL1");
    let before = peak_rss(served.pid());
    a.sync_ok(&["--push"]);
    let peak = peak_rss(served.pid());
    assert_eq!(count(&b, &b.table_of(&a)), N as i64);
    assert!(
        peak < data / 3,
        "the receiver peaked at {peak} bytes (before the sync {before}) for {data} bytes of data"
    );
    assert!(served.stop().success());
}
