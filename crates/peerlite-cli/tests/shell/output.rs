//! Item 10 and the tables of item 13. `--json` query output lost data: duplicate column
//! names collapsed into one key (`SELECT 1 AS a, 2 AS a`), keys came out sorted instead of in
//! column order, and ±Inf became `null`, which NULL also is. Every result was buffered:
//! `SELECT *` of a 35 MB table took 320 MB (886 MB with `--json`) and printed nothing until the
//! end. And text tables counted characters, so CJK text and emoji misaligned. Now each query is
//! one line `{"columns":[…],"rows":[[…]]}` in column order with every name kept, values tagged
//! where JSON has no literal, rows streamed as SQLite produces them, and tables laid out by
//! display width in bounded chunks.

use std::io::Read;
use std::path::Path;

use super::{json_of, peerlite, process, sql, stdout_of};

#[test]
fn json_rows_keep_every_column_in_order_and_every_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    sql(
        &db,
        &["CREATE TABLE t(b, a)", "INSERT INTO t VALUES (1, 2)"],
    );
    let out = json_of(peerlite().arg("--json").arg("sql").arg(&db).arg(
        "SELECT 1 AS a, 2 AS a, b, a, 1e999 AS inf, -1e999 AS ninf, NULL AS n, 'Infinity' AS s, \
         x'00ff' AS blob, 9223372036854775807 AS big, -9223372036854775808 AS small, 2.0 AS real, \
         0.1 AS tenth, '日本' AS text FROM t",
    ));
    assert_eq!(
        out,
        serde_json::json!({
            "columns": ["a", "a", "b", "a", "inf", "ninf", "n", "s", "blob", "big", "small", "real", "tenth", "text"],
            "rows": [[1, 2, 1, 2, {"real": "Infinity"}, {"real": "-Infinity"}, null, "Infinity",
                      {"blob": "00ff"}, i64::MAX, i64::MIN, 2.0, 0.1, "日本"]],
        })
    );
    let text = stdout_of(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT 9223372036854775807 AS big, 2.0 AS real, 1e999 AS inf"),
    );
    assert!(
        text.contains("9223372036854775807") && text.contains("2.0") && !text.contains("null"),
        "integers exact, reals with a point, infinity not null: {text}"
    );
    // A query without rows still says which columns it has.
    let empty = json_of(
        peerlite()
            .arg("--json")
            .arg("sql")
            .arg(&db)
            .arg("SELECT a, a FROM t WHERE 0"),
    );
    assert_eq!(
        empty,
        serde_json::json!({"columns": ["a", "a"], "rows": []})
    );
}

#[test]
fn text_tables_align_wide_characters_by_display_width() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let table =
        stdout_of(peerlite().arg("sql").arg(&db).arg(
            "SELECT '日本語' AS name, 1 AS n UNION ALL SELECT 'ab', 2 UNION ALL SELECT '🎉x', 3",
        ));
    assert_eq!(
        table,
        "name   | n\n-------+--\n日本語 | 1\nab     | 2\n🎉x    | 3\n"
    );
}

/// The peak resident memory of a running process, as the kernel keeps it.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `peerlite [--json] sql DB SELECT`, reading its output as it comes; returns the bytes
/// printed and the highest peak RSS seen while it ran.
fn run_measured(db: &Path, json: bool, select: &str) -> (u64, u64) {
    let mut cmd = process();
    if json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .arg("sql")
        .arg(db)
        .arg(select)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut sink = [0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match stdout.read(&mut sink) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kb) = peak_rss_kb(child.id()) {
            peak = peak.max(kb);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(child.wait().unwrap().success());
    (reader.join().unwrap(), peak)
}

#[test]
fn a_huge_select_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    sql(
        &db,
        &["CREATE TABLE big(id INTEGER PRIMARY KEY, payload TEXT); \
           WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 450000) \
           INSERT INTO big SELECT i, hex(randomblob(50)) FROM c"],
    );
    let table_kb = std::fs::metadata(&db).unwrap().len() / 1024;
    assert!(table_kb > 35 * 1024, "a table of {table_kb} KiB");
    for json in [true, false] {
        let (printed, peak_kb) = run_measured(&db, json, "SELECT * FROM big");
        assert!(
            printed > 450_000 * 100,
            "every row printed ({printed} bytes)"
        );
        assert!(peak_kb > 0, "the peak was measured");
        assert!(
            peak_kb < table_kb / 2,
            "json {json}: peak RSS {peak_kb} KiB for a {table_kb} KiB table: rows must stream"
        );
    }
}

/// A query that never ends, in a process limited to 1 GB of address space: a CLI that
/// collects rows before printing runs out of memory and dies without printing one; one that
/// streams prints the first rows at once. True when `needle` was printed.
fn endless_query_prints(json: bool, needle: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1000000; exec \"$0\" {}sql \"$1\" \"$2\"",
            if json { "--json " } else { "" }
        ))
        .arg(env!("CARGO_BIN_EXE_peerlite"))
        .arg(dir.path().join("endless.db"))
        .arg("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")
        .env_remove("PEERLITE_KEY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let found = loop {
        if String::from_utf8_lossy(&seen).contains(needle) {
            break true;
        }
        match stdout.read(&mut buf) {
            Ok(0) | Err(_) => break false,
            Ok(n) if seen.len() < 1 << 20 => seen.extend_from_slice(&buf[..n]),
            Ok(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    found
}

#[test]
fn the_first_rows_print_before_the_query_ends() {
    assert!(endless_query_prints(
        true,
        "{\"columns\":[\"x\"],\"rows\":[[1],[2]"
    ));
    // Text is laid out in chunks of bounded size: the first one comes at once.
    assert!(endless_query_prints(false, "x\n----\n1\n2\n"));
}
