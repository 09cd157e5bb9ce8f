//! Devices that find each other and keep each other up to date while they serve, with
//! nobody running `peerlite sync`: a serving device dials its trusted devices' static
//! addresses until they answer (and again after they go away), syncs what is pending when it
//! reaches one, pushes auto-sync tables' commits — made by another process — shortly after
//! they commit, and finds trusted devices on the LAN by mDNS where multicast works.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

/// A free loopback port for a device that is not serving yet (the OS picks it; nothing else
/// in the test binds ports by number).
fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The texts of `from`'s notes held by `at`.
fn notes(at: &Device, from: &Device) -> Vec<serde_json::Value> {
    let table = at.table_of(from);
    let exists = at.rows(&format!(
        "SELECT count(*) FROM sqlite_schema WHERE name = '{table}'"
    ))[0][0]
        == json!(1);
    if !exists {
        return Vec::new();
    }
    at.rows(&format!("SELECT text FROM \"{table}\" ORDER BY id"))
}

/// Lines of a serve's log containing `what`.
fn count(served: &Served, what: &str) -> usize {
    served.logged().lines().filter(|l| l.contains(what)).count()
}

#[test]
fn a_pending_push_reaches_a_device_when_it_comes_online_at_its_static_address() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    // b will listen at `b_addr`; a knows it. b knows no address for a: only a can dial.
    let b_addr = free_port();
    a.trusts(&b, "SL1", Some(&b_addr));
    b.trusts(&a, "SL1", None);
    let a_served = a.serve(&[]);
    // Edited by another process while b is offline: a's dialer finds nobody.
    sql(
        &a.db,
        &["INSERT INTO note(text) VALUES ('while b was away')"],
    );
    let b_served = b.serve_with(&["--no-mdns", "--listen", &b_addr], &[]);
    wait_until("a's pending note at b", || {
        notes(&b, &a) == vec![json!(["while b was away"])]
    });
    assert!(
        count(&a_served, "pending sync") >= 1,
        "{}",
        a_served.logged()
    );
    // b goes away and comes back at the same address: a dials again (backing off meanwhile)
    // and what was committed while b was down reaches it.
    assert!(b_served.stop().success());
    sql(&a.db, &["INSERT INTO note(text) VALUES ('second absence')"]);
    let b_served = b.serve_with(&["--no-mdns", "--listen", &b_addr], &[]);
    wait_until("the note of b's second absence", || {
        notes(&b, &a) == vec![json!(["while b was away"]), json!(["second absence"])]
    });
    assert!(b_served.stop().success());
    assert!(a_served.stop().success());
}

#[test]
fn auto_sync_pushes_commits_made_by_another_process_coalesced() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let out = stdout_of(
        peerlite()
            .arg("distribute")
            .arg(&a.db)
            .arg("note")
            .arg("--auto-sync"),
    );
    assert!(out.trim_end().ends_with("; auto-sync)"), "{out}");
    let b_served = serve_for(&a, &b, "SL1", "SL1");
    let a_served = a.serve(&[]);
    wait_until("a to reach b", || count(&a_served, "connected") >= 1);
    // One commit by a `peerlite sql` beside the serving process.
    sql(
        &a.db,
        &["INSERT INTO note(text) VALUES ('from another process')"],
    );
    wait_until("the note at b", || {
        notes(&b, &a) == vec![json!(["from another process"])]
    });
    // A burst: 40 commits, each by its own process, 4 at a time.
    let before = count(&a_served, "auto-sync push");
    std::thread::scope(|s| {
        for t in 0..4 {
            let db = &a.db;
            s.spawn(move || {
                for i in 0..10 {
                    sql(
                        db,
                        &[&format!("INSERT INTO note(text) VALUES ('burst {t}-{i}')")],
                    );
                }
            });
        }
    });
    wait_until("the burst at b", || notes(&b, &a).len() == 41);
    let pushes = count(&a_served, "auto-sync push") - before;
    assert!(pushes >= 1, "{}", a_served.logged());
    assert!(pushes < 40, "40 commits gave {pushes} pushes");
    assert!(a_served.stop().success());
    assert!(b_served.stop().success());
}

/// Whether multicast reaches this machine's own sockets (mDNS needs it): a datagram sent to
/// the mDNS group is looped back to a socket that joined it, within a bounded wait.
fn multicast_works() -> Result<(), String> {
    let group = Ipv4Addr::new(224, 0, 0, 251);
    let rx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
    rx.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
        .map_err(|e| format!("cannot join the mDNS group: {e}"))?;
    rx.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let port = rx.local_addr().map_err(|e| e.to_string())?.port();
    let tx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
    tx.set_multicast_loop_v4(true).map_err(|e| e.to_string())?;
    for _ in 0..3 {
        tx.send_to(b"peerlite probe", (group, port))
            .map_err(|e| format!("cannot send to the mDNS group: {e}"))?;
        let mut buf = [0u8; 64];
        if let Ok((n, _)) = rx.recv_from(&mut buf)
            && &buf[..n] == b"peerlite probe"
        {
            return Ok(());
        }
    }
    Err("a multicast datagram sent here never came back".into())
}

#[test]
fn mdns_finds_trusted_devices_where_multicast_works() {
    if let Err(why) = multicast_works() {
        println!("skipped: multicast does not work here ({why})");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    // No addresses: only discovery can bring them together.
    a.trusts(&b, "SL1", None);
    b.trusts(&a, "SL1", None);
    sql(&a.db, &["INSERT INTO note(text) VALUES ('found you')"]);
    let options = ["--listen", "0.0.0.0:0"];
    let b_served = b.serve_with(&options, &[]);
    let a_served = a.serve_with(&options, &[]);
    if [&a_served, &b_served]
        .iter()
        .any(|s| s.logged().contains("mDNS discovery cannot start"))
    {
        println!("skipped: mDNS cannot start here:\n{}", a_served.logged());
        return;
    }
    wait_until("a's note at b through discovery", || {
        notes(&b, &a) == vec![json!(["found you"])]
    });
    assert!(a_served.stop().success());
    assert!(b_served.stop().success());
}
