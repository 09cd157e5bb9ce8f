//! Device homes: private files, the same identity on every open, a key never replaced, an
//! interrupted init finished by running it again.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use peerlite_net::{DeviceLevel, Error, Home};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn init_writes_private_files_and_every_open_sees_the_same_identity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/home");
    let home = Home::init(&path, Some("  laptop "), DeviceLevel::Sl4).unwrap();
    assert_eq!(mode(&path), 0o700);
    assert_eq!(mode(&path.join("device.key")), 0o600);
    assert_eq!(mode(&path.join("device.json")), 0o600);
    // Written through temporary files that are gone once in place.
    assert_eq!(names(&path), ["device.json", "device.key"]);
    let key = fs::read(path.join("device.key")).unwrap();
    for _ in 0..3 {
        let again = Home::open(&path).unwrap();
        assert_eq!(again.id(), home.id());
        assert_eq!(again.name(), "laptop");
        assert_eq!(again.level(), DeviceLevel::Sl4);
    }
    assert_eq!(fs::read(path.join("device.key")).unwrap(), key);
    // Debug output never shows the key.
    let debug = format!("{home:?}");
    assert!(debug.contains(&home.id().to_string()));
    assert!(!debug.contains("PRIVATE"));
}

#[test]
fn an_existing_home_is_narrowed_to_0700() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    Home::init(dir.path(), None, DeviceLevel::Sl1).unwrap();
    assert_eq!(mode(dir.path()), 0o700);
}

#[test]
fn a_second_init_is_refused_and_the_key_stays() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(dir.path(), Some("one"), DeviceLevel::Sl2).unwrap();
    let key = fs::read(dir.path().join("device.key")).unwrap();
    let device = fs::read(dir.path().join("device.json")).unwrap();
    let err = Home::init(dir.path(), Some("two"), DeviceLevel::Sl5).unwrap_err();
    assert!(matches!(&err, Error::IdentityExists { id, .. } if *id == home.id()));
    assert_eq!(err.code(), 17060011);
    assert_eq!(fs::read(dir.path().join("device.key")).unwrap(), key);
    assert_eq!(fs::read(dir.path().join("device.json")).unwrap(), device);
}

#[test]
fn distinct_homes_have_distinct_ids_and_the_default_name_shows_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let a = Home::init(dir.path().join("a"), None, DeviceLevel::Sl1).unwrap();
    let b = Home::init(dir.path().join("b"), None, DeviceLevel::Sl1).unwrap();
    assert_ne!(a.id(), b.id());
    assert_eq!(a.name(), format!("device-{}", a.id().short()));
    assert_eq!(a.level(), DeviceLevel::Sl1);
}

/// init writes the key, then device.json. A crash between the two leaves a key alone: open
/// says so (with the hint to run init again), and init again finishes with the same key.
#[test]
fn an_interrupted_init_is_finished_by_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::init(dir.path(), Some("first"), DeviceLevel::Sl1).unwrap();
    fs::remove_file(dir.path().join("device.json")).unwrap();
    let err = Home::open(dir.path()).unwrap_err();
    assert_eq!(err.code(), 17060013);
    assert!(err.hint().contains("peerlite device init"));
    let finished = Home::init(dir.path(), Some("second"), DeviceLevel::Sl3).unwrap();
    assert_eq!(finished.id(), home.id());
    assert_eq!(Home::open(dir.path()).unwrap().name(), "second");
}

/// A home whose device.key was lost: the hint said "run `device init` again", which minted a
/// new identity over the recorded one (a new device to every peer, and a store synced as the
/// old one refused with 17040009); a truncated key got the same hint, and `device init`
/// refused it, so the advice could never work.
#[test]
fn a_lost_or_damaged_key_is_never_replaced_and_the_hint_says_what_works() {
    for damage in ["remove", "truncate", "empty"] {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::init(dir.path(), Some("alpha"), DeviceLevel::Sl3).unwrap();
        let key = dir.path().join("device.key");
        match damage {
            "remove" => fs::remove_file(&key).unwrap(),
            "truncate" => {
                let bytes = fs::read(&key).unwrap();
                fs::write(&key, &bytes[..50]).unwrap();
            }
            _ => fs::write(&key, b"").unwrap(),
        }
        let record = fs::read(dir.path().join("device.json")).unwrap();
        let err = Home::open(dir.path()).unwrap_err();
        assert_eq!(err.code(), 17060013, "{damage}");
        let err = Home::init(dir.path(), None, DeviceLevel::Sl1).unwrap_err();
        assert_eq!(err.code(), 17060013, "{damage}: {err}");
        assert!(
            !err.hint().contains("run it again"),
            "{damage}: {}",
            err.hint()
        );
        assert!(err.hint().contains("from a copy"), "{damage}");
        // The record of the identity is untouched.
        assert_eq!(fs::read(dir.path().join("device.json")).unwrap(), record);
        assert!(String::from_utf8_lossy(&record).contains(&home.id().to_string()));
    }
}

#[test]
fn missing_or_inconsistent_identities_are_refused_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(Home::open(dir.path()).unwrap_err().code(), 17060012);
    assert_eq!(
        Home::open(dir.path().join("absent")).unwrap_err().code(),
        17060012
    );

    // device.json naming another id than the key's.
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    Home::init(&a, None, DeviceLevel::Sl1).unwrap();
    Home::init(&b, None, DeviceLevel::Sl1).unwrap();
    fs::copy(b.join("device.json"), a.join("device.json")).unwrap();
    let err = Home::open(&a).unwrap_err();
    assert_eq!(err.code(), 17060013);
    assert!(err.to_string().contains("but the key is"));

    // A key file that is not a key; a device.json that is not JSON; a lost key.
    for (file, bytes) in [("device.key", &b"garbage"[..]), ("device.json", &b"{"[..])] {
        let c = dir.path().join(format!("c-{file}"));
        Home::init(&c, None, DeviceLevel::Sl1).unwrap();
        fs::write(c.join(file), bytes).unwrap();
        assert_eq!(Home::open(&c).unwrap_err().code(), 17060013, "{file}");
    }
    let d = dir.path().join("d");
    Home::init(&d, None, DeviceLevel::Sl1).unwrap();
    fs::remove_file(d.join("device.key")).unwrap();
    assert_eq!(Home::open(&d).unwrap_err().code(), 17060013);
}

#[test]
fn bad_names_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["", "   ", "tab\there", &"x".repeat(65)] {
        let path = dir.path().join("h");
        let err = Home::init(&path, Some(name), DeviceLevel::Sl1).unwrap_err();
        assert_eq!(err.code(), 17060016, "{name:?}");
        assert!(!path.exists());
    }
}

/// `device init --home DIR` on a directory in use (a slip: `--home ~`, `--home /tmp`) used to
/// narrow it to 0700 and lock its other users out. A home is new, empty, or already peerlite's.
#[test]
fn a_directory_in_use_for_other_things_is_refused_and_left_as_it_is() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(shared.join("someone-elses-file"), b"x").unwrap();
    let err = Home::init(&shared, None, DeviceLevel::Sl1).unwrap_err();
    assert_eq!(err.code(), 17060016, "{err}");
    let kept = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(kept, 0o1777, "its mode is untouched");
    assert_eq!(names(&shared), ["someone-elses-file"]);
}
