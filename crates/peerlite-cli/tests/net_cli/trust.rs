//! `peerlite trust add|list|remove`.

use std::fs;

use peerlite_net::DeviceId;

use crate::*;

fn trust(home: &Path, args: &[&str]) -> Command {
    let mut cmd = peerlite();
    cmd.arg("trust")
        .arg(args[0])
        .arg("--home")
        .arg(home)
        .args(&args[1..]);
    cmd
}

#[test]
fn add_list_remove_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("me");
    init(&home, &[]);
    let laptop = init(&dir.path().join("laptop"), &[]);
    let phone = init(&dir.path().join("phone"), &[]);
    assert_eq!(stdout_of(&mut trust(&home, &["list"])), "");
    assert_eq!(stdout_of(&mut trust(&home, &["list", "--json"])), "[]\n");

    let out = stdout_of(&mut trust(
        &home,
        &[
            "add",
            &laptop.to_string(),
            "--addr",
            "127.0.0.1:7000",
            "--addr",
            "[::1]:7000",
            "--name",
            "laptop",
            "--level",
            "SL4",
        ],
    ));
    assert_eq!(out, "");
    // Lower case, no dashes: the same id.
    let typed = phone.to_string().to_lowercase().replace('-', "");
    stdout_of(&mut trust(&home, &["add", &typed]));

    let listed = stdout_of(&mut trust(&home, &["list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 4, "{listed}");
    assert!(lines[0].starts_with("id"));
    let laptop_line = lines
        .iter()
        .find(|l| l.contains(&laptop.to_string()))
        .unwrap();
    assert!(laptop_line.contains("laptop") && laptop_line.contains("SL4"));
    assert!(laptop_line.contains("127.0.0.1:7000,[::1]:7000"));
    let phone_line = lines
        .iter()
        .find(|l| l.contains(&phone.to_string()))
        .unwrap();
    assert!(phone_line.contains("SL1"));

    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&mut trust(&home, &["list", "--json"]))).unwrap();
    let devices = json.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    let laptop_json = devices
        .iter()
        .find(|d| d["id"] == laptop.to_string())
        .unwrap();
    assert_eq!(
        laptop_json,
        &serde_json::json!({
            "id": laptop.to_string(), "name": "laptop", "level": "SL4",
            "addrs": ["127.0.0.1:7000", "[::1]:7000"],
        })
    );

    assert_eq!(
        stdout_of(&mut trust(&home, &["remove", &laptop.to_string()])),
        ""
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&mut trust(&home, &["list", "--json"]))).unwrap();
    let ids: Vec<DeviceId> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, [phone]);
}

#[test]
fn refusals_have_codes_and_hints_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("me");
    let me = init(&home, &[]);
    let peer = init(&dir.path().join("peer"), &[]).to_string();
    stdout_of(&mut trust(&home, &["add", &peer]));
    let file = home.join("trust.json");
    let before = fs::read(&file).unwrap();

    fails_with(&mut trust(&home, &["add", &peer]), 17060014);
    // A typo in an id: one character changed, one dropped, one foreign.
    let mut changed: Vec<char> = peer.chars().collect();
    changed[20] = if changed[20] == 'A' { 'B' } else { 'A' };
    let changed: String = changed.into_iter().collect();
    let stderr = fails_with(&mut trust(&home, &["add", &changed]), 17060010);
    assert!(stderr.contains("mistyped"));
    fails_with(&mut trust(&home, &["add", &peer[1..]]), 17060010);
    // A character outside base32 ('0' is not in it). Not `replacen('A', "0", 1)`: about one
    // random id in six has no 'A', and the "typo" was then the peer's own id, already trusted.
    fails_with(
        &mut trust(&home, &["add", &format!("0{}", &peer[1..])]),
        17060010,
    );
    fails_with(&mut trust(&home, &["remove", &changed]), 17060010);
    // Its own id, a bad address, an unknown device.
    fails_with(&mut trust(&home, &["add", &me.to_string()]), 17060016);
    let other = init(&dir.path().join("other"), &[]).to_string();
    for addr in ["nohost", "h:0", "::1:80"] {
        fails_with(
            &mut trust(&home, &["add", &other, "--addr", addr]),
            17060016,
        );
    }
    fails_with(&mut trust(&home, &["remove", &other]), 17060015);
    // A bad level is a usage error.
    trust(&home, &["add", &other, "--level", "SL0"])
        .assert()
        .code(1);
    assert_eq!(fs::read(&file).unwrap(), before);

    // Without an identity there is no trust store.
    fails_with(&mut trust(&dir.path().join("nobody"), &["list"]), 17060012);
    // A damaged trust store is reported and left as it is.
    fs::write(&file, b"{ not json").unwrap();
    let stderr = fails_with(&mut trust(&home, &["add", &other]), 17060017);
    assert!(stderr.contains("peerlite trust add"));
    fails_with(&mut trust(&home, &["list"]), 17060017);
    assert_eq!(fs::read(&file).unwrap(), b"{ not json");
}
