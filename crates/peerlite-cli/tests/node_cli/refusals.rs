//! Refusals are per-device statuses: a device that does not trust this one, one this device
//! does not trust, and one whose recorded level is below the data's label each get their
//! line `DEVICE error[CODE] reason`, the sync exits 2, and the other devices still sync.

use crate::common::*;

fn error_line<'a>(out: &'a str, device: &Device) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&device.id))
        .unwrap_or_else(|| panic!("no line for {} in {out}", device.id))
}

#[test]
fn a_device_that_does_not_trust_us_refuses_and_the_others_still_sync() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let c = Device::new(root.path(), "c", "SL1").with_notes(&[]);
    // b serves but never trusted a; c serves and did.
    let b_served = b.serve(&[]);
    let c_served = serve_for(&a, &c, "SL1", "SL1");
    a.trusts(&b, "SL1", Some(&b_served.addr));
    sql(&a.db, &["INSERT INTO note(text) VALUES ('hi')"]);
    let (code, out, err) = a.sync(&["--push"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        error_line(&out, &b).starts_with(&format!("{} error[17060002] ", b.id)),
        "{out}"
    );
    assert_eq!(error_line(&out, &c), format!("{} ok", c.id));
    assert!(
        err.contains("hint: ") && err.contains("`peerlite trust add"),
        "{err}"
    );
    // b logged the refusal with a's id.
    wait_until("b to log the refusal", || {
        let log = b_served.logged();
        log.contains("refused untrusted device") && log.contains(&a.id)
    });
    // Nothing reached b.
    assert_eq!(b.device_tables(), 0);
    assert!(b_served.stop().success());
    assert!(c_served.stop().success());
}

#[test]
fn a_device_we_do_not_trust_is_refused_before_any_connection() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let stranger = Device::new(root.path(), "stranger", "SL1");
    let (code, out, _) = a.sync(&["--push", "--device", &stranger.id]);
    assert_eq!(code, 2);
    assert!(
        out.starts_with(&format!("{} error[17060015] ", stranger.id)),
        "{out}"
    );
    // A mistyped id is refused as such.
    let mistyped = format!("{}X", &stranger.id[..stranger.id.len() - 1]);
    let (code, out, err) = a.sync(&["--push", "--device", &mistyped]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("error[17060010]"), "{err}");
}

#[test]
fn data_above_the_peers_level_is_refused_both_ways() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL3").with_notes(&["--level", "S3"]);
    // b may hold S3 data (its own level), but a records it at SL2.
    let b = Device::new(root.path(), "b", "SL3").with_notes(&["--level", "S3"]);
    // a records b at SL2: a's S3 notes may not go there; b records a at SL2 too.
    let served = serve_for(&a, &b, "SL2", "SL2");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('secret')"]);
    sql(&b.db, &["INSERT INTO note(text) VALUES ('theirs')"]);
    for direction in ["--push", "--pull"] {
        let (code, out, err) = a.sync(&[direction]);
        assert_eq!(code, 2, "{direction}: {out}\n{err}");
        assert!(
            out.starts_with(&format!(
                "{} error[17040006] refused by security level",
                b.id
            )),
            "{direction}: {out}"
        );
        assert!(err.contains("--level"), "{err}");
    }
    assert_eq!(b.device_tables(), 0);
    assert_eq!(a.device_tables(), 0);
    // Raised to SL3 on both sides, the same sync goes through.
    a.distrusts(&b);
    a.trusts(&b, "SL3", Some(&served.addr));
    b.distrusts(&a);
    b.trusts(&a, "SL3", None);
    // The running serve reads its trust store again within a second or so: the pull, which
    // b's record of a decides, goes through once it has.
    wait_until("b to take a at SL3", || a.sync(&["--pull"]).0 == 0);
    a.sync_ok(&["--push"]);
    assert_eq!(
        a.rows(&format!("SELECT text FROM \"{}\"", a.table_of(&b))),
        vec![serde_json::json!(["theirs"])]
    );
    assert_eq!(
        b.rows(&format!("SELECT text FROM \"{}\"", b.table_of(&a))),
        vec![serde_json::json!(["secret"])]
    );
    assert!(served.stop().success());
}

/// An S3 store pushed into a copy of the store labelled S1 on a device trusted at SL3, and
/// that device relayed the rows to an SL1 device: the label did not travel with the data.
/// Data labelled S_k now enters only a store labelled S_k or above, in both directions.
#[test]
fn data_never_enters_a_copy_of_the_store_labelled_below_it() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL3").with_notes(&["--level", "S3"]);
    let b = Device::new(root.path(), "b", "SL3").with_notes(&["--level", "S1"]);
    let served = serve_for(&a, &b, "SL3", "SL3");
    sql(&a.db, &["INSERT INTO note(text) VALUES ('secret')"]);
    sql(&b.db, &["INSERT INTO note(text) VALUES ('public')"]);
    let (code, out, _) = a.sync(&["--push"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with(&format!("{} error[17040006]", b.id)) && out.contains("labelled S1"),
        "{out}"
    );
    assert_eq!(b.device_tables(), 0);
    // The other way is upward: b's S1 rows may enter a's S3 store.
    a.sync_ok(&["--pull"]);
    assert_eq!(
        a.rows(&format!("SELECT text FROM \"{}\"", a.table_of(&b))),
        vec![serde_json::json!(["public"])]
    );
    assert!(served.stop().success());
}

/// A device initialised at SL1 created an S4 store, pulled S4 rows into it and queried them:
/// its own level was never checked. A device now serves and syncs only stores its own level
/// admits.
#[test]
fn a_device_holds_no_store_labelled_above_its_own_level() {
    let root = tempfile::tempdir().unwrap();
    let low = Device::new(root.path(), "low", "SL1").with_notes(&["--level", "S4"]);
    let b = Device::new(root.path(), "b", "SL4").with_notes(&["--level", "S4"]);
    let served = serve_for(&low, &b, "SL4", "SL4");
    sql(&b.db, &["INSERT INTO note(text) VALUES ('s4 secret')"]);
    let (code, out, err) = low.sync(&["--pull"]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.starts_with("error[17060016]") && err.contains("labelled S4"),
        "{err}"
    );
    let (code, _, err) = run(peerlite()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-mdns", "--home"])
        .arg(&low.home)
        .arg("--db")
        .arg(&low.db));
    assert_eq!(code, 2, "{err}");
    assert_eq!(low.device_tables(), 0);
    assert!(served.stop().success());
}

/// Adversary round 2, 18c: a device removed from the serving device's trust store while it
/// pulled was told `error[17060008] unreachable: connection closed` with the hint to check
/// that serve runs there — it was refused, not unreachable. The serving device now ends the
/// running sessions with the refusal a handshake would give (17060002, "no longer trusts this
/// device") before it closes the connection, so the device's line says it is untrusted, with
/// the hint to be trusted again.
#[test]
fn a_device_removed_from_trust_mid_sync_is_told_it_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let a = Device::new(root.path(), "a", "SL1").with_notes(&[]);
    let b = Device::new(root.path(), "b", "SL1").with_notes(&[]);
    let served = slow_pull_from(&a, &b, 300_000);
    let pull = a.spawn_sync(&["--pull", "--timeout", "600"]);
    wait_for_rows_from(&a, &b);
    b.distrusts(&a);
    let (code, out, err) = pull.finish();
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.starts_with(&format!("{} error[17060002] untrusted: ", b.id)),
        "{out}\n{err}\n{}",
        served.logged()
    );
    assert!(out.contains("no longer trusts this device"), "{out}");
    assert!(
        err.contains("hint: ") && err.contains("peerlite trust add"),
        "{err}"
    );
    assert!(served.stop().success());
}
