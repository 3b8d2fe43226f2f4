//! Profiles: parsing into the typed values, the permission rules, the store and the box copy.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

const PASS: &str = "correct horse";

fn parse(text: &str) -> Result<Profile, String> {
    Profile::parse(text, "t.toml").map_err(|e| e.to_string())
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn names_are_short_lowercase_and_safe_as_file_names() {
    for ok in ["office", "lab-2", "a", "x_y", "0"] {
        assert!(Name::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "Office",
        "-x",
        "_x",
        "a/b",
        "..",
        "a.b",
        "a b",
        &"a".repeat(33),
    ] {
        assert!(Name::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn every_security_parses_and_each_wrong_key_is_refused_by_name() {
    let good = [
        "ssid = \"Guest\"\nsecurity = \"open\"\n".to_string(),
        format!("ssid = \"Office\"\nsecurity = \"wpa2-psk\"\npsk = \"{PASS}\"\n"),
        format!("ssid = \"Office\"\nsecurity = \"wpa2-psk\"\npsk = \"{}\"\n", "ab".repeat(32)),
        "ssid = \"Lab\"\nsecurity = \"wpa3-sae\"\nsae_password = \"a b\\\"c\"\n".to_string(),
        format!(
            "ssid = \"Mixed\"\nsecurity = \"wpa2-psk/wpa3-sae\"\npsk = \"{PASS}\"\nhidden = true\n\
             bssid = \"02:00:00:00:01:00\"\nmac_address = \"per-network\"\ninterfaces = [\"wlan0\"]\n"
        ),
        "ssid = \"Corp\"\nsecurity = \"eap\"\n[eap]\nmethod = \"peap\"\nidentity = \"alice\"\n\
         password = \"pw\"\nanonymous_identity = \"anon\"\ndomain_suffix_match = \"radius.example.org\"\n"
            .to_string(),
        "ssid = \"Corp\"\nsecurity = \"eap\"\n[eap]\nmethod = \"tls\"\nidentity = \"dev\"\n\
         client_cert = \"/etc/wifi-isolate/networks/c.pem\"\nprivate_key = \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\"\n"
            .to_string(),
    ];
    for t in &good {
        parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    #[rustfmt::skip]
    let bad: &[(&str, &str)] = &[
        ("ssid = \"x\"\nsecurity = \"wep\"\n", "unknown variant"),
        ("ssid = \"x\"\nsecurity = \"open\"\npassword = \"p\"\n", "unknown field `password`"),
        ("ssid = \"x\"\nsecurity = \"open\"\npsk = \"correct horse\"\n", "security open takes no psk"),
        ("ssid = \"x\"\nsecurity = \"wpa2-psk\"\n", "security wpa2-psk needs psk"),
        ("ssid = \"x\"\nsecurity = \"wpa2-psk\"\npsk = \"short\"\n", "psk: passphrase must be 8 to 63"),
        ("ssid = \"x\"\nsecurity = \"wpa2-psk\"\nsae_password = \"correct horse\"\n", "its passphrase is psk"),
        ("ssid = \"x\"\nsecurity = \"wpa3-sae\"\npsk = \"correct horse\"\n", "its password is sae_password"),
        ("ssid = \"x\"\nsecurity = \"wpa3-sae\"\nsae_password = \"a\\u0000b\"\n", "sae_password: SAE password character 2"),
        ("ssid = \"\"\nsecurity = \"open\"\n", "ssid: SSID must be 1 to 32"),
        ("ssid = \"x\"\nsecurity = \"open\"\nbssid = \"02:00\"\n", "bssid:"),
        ("ssid = \"x\"\nsecurity = \"open\"\ninterfaces = [\"a/b\"]\n", "interfaces:"),
        ("ssid = \"x\"\nsecurity = \"open\"\nmac_address = \"spoofed\"\n", "unknown variant"),
        ("ssid = \"x\"\nsecurity = \"eap\"\n", "needs an [eap] table"),
        ("ssid = \"x\"\nsecurity = \"eap\"\n[eap]\nmethod = \"peap\"\nidentity = \"a\"\n", "PEAP and TTLS need a password"),
        ("ssid = \"x\"\nsecurity = \"eap\"\n[eap]\nmethod = \"md5\"\nidentity = \"a\"\n", "unknown variant"),
        ("ssid = \"x\"\nsecurity = \"eap\"\n[eap]\nmethod = \"peap\"\nidentity = \"a\"\npassword = \"p\"\nkey = 1\n", "unknown field `key`"),
        ("ssid = \"x\"\nsecurity = \"eap\"\n[eap]\nmethod = \"tls\"\nidentity = \"a\"\nclient_cert = \"/c\"\n", "needs a private key"),
        ("ssid = \"x\"\nsecurity = \"eap\"\n[eap]\nmethod = \"tls\"\nidentity = \"a\"\nclient_cert = \"c.pem\"\nprivate_key = \"/k\"\n", "absolute path"),
        ("ssid = \"x\"\nsecurity = \"eap\"\nmac_address = \"random\"\n[eap]\nmethod = \"peap\"\nidentity = \"a\"\npassword = \"p\"\n", "only permanent"),
        ("ssid = \"x\"\nsecurity = \"wpa2-psk/wpa3-sae\"\npsk = \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"\n", "no raw-PSK form"),
    ];
    for (t, want) in bad {
        let e = parse(t).expect_err(t);
        assert!(e.contains(want), "{t}\n=> {e}");
        assert!(e.starts_with("t.toml: "), "{e}");
    }
}

#[test]
fn a_parse_error_never_quotes_the_line_it_is_on() {
    // toml's Display shows the source line; a secret on it must not reach the error.
    let e = parse("ssid = \"x\"\nsecurity = \"wpa2-psk\"\npsk = \"hunter2hunter2\" junk\n")
        .unwrap_err();
    assert!(!e.contains("hunter2"), "{e}");
    let e = parse("ssid = \"x\"\nsecurity = \"wpa2-psk\"\npsk = 12345678\n").unwrap_err();
    assert!(!e.contains("12345678"), "{e}");
}

/// A store in a temp dir: root 0700 as `save` makes it.
fn store() -> (tempfile::TempDir, Store) {
    let d = tempfile::tempdir().unwrap();
    let s = Store::new(d.path().join("networks"));
    (d, s)
}

fn office() -> Profile {
    parse(&format!(
        "ssid = \"Office\"\nsecurity = \"wpa2-psk\"\npsk = \"{PASS}\"\n"
    ))
    .unwrap()
}

#[test]
fn save_load_list_remove_round_trip() {
    let (_d, s) = store();
    let n = Name::parse("office").unwrap();
    assert!(
        s.names().unwrap().is_empty(),
        "a missing dir is an empty store"
    );
    let path = s.save(&n, &office(), false).unwrap();
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (0, 0o600));
    assert_eq!(std::fs::metadata(s.dir()).unwrap().mode() & 0o777, 0o700);
    assert!(matches!(
        s.save(&n, &office(), false),
        Err(ProfileError::Exists(_))
    ));
    let p = s.load(&n).unwrap();
    assert_eq!((p.ssid.as_str(), p.psk.as_deref()), ("Office", Some(PASS)));
    assert_eq!(p.secrets_set(), ["psk"]);
    // Files that are not NAME.toml with a valid name are not profiles.
    std::fs::write(s.dir().join("README"), "x").unwrap();
    std::fs::write(s.dir().join("Bad.toml"), "x").unwrap();
    assert_eq!(s.names().unwrap(), vec![n.clone()]);
    s.remove(&n).unwrap();
    let e = s.load(&n).unwrap_err().to_string();
    assert!(e.contains("wifi-isolate network add office"), "{e}");
    assert!(matches!(s.remove(&n), Err(ProfileError::NotFound { .. })));
}

#[test]
fn profiles_others_could_read_or_write_are_refused_with_the_fix() {
    let (_d, s) = store();
    let n = Name::parse("office").unwrap();
    let path = s.save(&n, &office(), false).unwrap();
    for (mode, want) in [
        (0o640, "chmod 600"),
        (0o604, "chmod 600"),
        (0o644, "chmod 600"),
    ] {
        chmod(&path, mode);
        let e = s.load(&n).unwrap_err().to_string();
        assert!(
            e.contains(want) && e.contains(&path.display().to_string()),
            "{mode:o}: {e}"
        );
        assert!(!e.contains(PASS), "{e}");
    }
    chmod(&path, 0o600);
    std::os::unix::fs::lchown(&path, Some(65534), None).unwrap();
    let e = s.load(&n).unwrap_err().to_string();
    assert!(e.contains("not root: chown root:root"), "{e}");
    std::os::unix::fs::lchown(&path, Some(0), None).unwrap();
    s.load(&n).unwrap();
    // A symlink is not followed.
    let link = s.dir().join("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let e = s
        .load(&Name::parse("link").unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("symbolic link"), "{e}");
    std::fs::remove_file(&link).unwrap();
    // The directory: root's and closed to others.
    chmod(s.dir(), 0o755);
    let e = s.load(&n).unwrap_err().to_string();
    assert!(e.contains("chmod 700"), "{e}");
    chmod(s.dir(), 0o700);
}

#[test]
fn the_box_copy_has_pem_text_for_paths_and_only_applicable_profiles() {
    let (d, s) = store();
    let key = d.path().join("key.pem");
    let cert = d.path().join("cert.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    chmod(&key, 0o600);
    chmod(&cert, 0o644);
    let tls = parse(&format!(
        "ssid = \"Corp\"\nsecurity = \"eap\"\n[eap]\nmethod = \"tls\"\nidentity = \"dev\"\n\
         client_cert = \"{}\"\nprivate_key = \"{}\"\n",
        cert.display(),
        key.display()
    ))
    .unwrap();
    s.save(&Name::parse("corp").unwrap(), &tls, false).unwrap();
    let mut only_wlan1 = office();
    only_wlan1.interfaces = vec!["wlan1".into()];
    s.save(&Name::parse("office").unwrap(), &only_wlan1, false)
        .unwrap();

    let (files, bad) = s.for_box("wlan0").unwrap();
    assert!(bad.is_empty());
    assert_eq!(files.len(), 1, "office is for wlan1 only");
    let copy = parse(std::str::from_utf8(&files[0].1).unwrap()).unwrap();
    let e = copy.eap.unwrap();
    assert!(e.private_key.unwrap().contains("BEGIN PRIVATE KEY"));
    assert!(e.client_cert.unwrap().contains("BEGIN CERTIFICATE"));
    assert_eq!(s.for_box("wlan1").unwrap().0.len(), 2);

    // A key others may read is refused when the box copy is made; the rest still goes.
    chmod(&key, 0o644);
    let (files, bad) = s.for_box("wlan1").unwrap();
    assert_eq!(files.len(), 1);
    assert!(bad[0].to_string().contains("chmod 600"), "{}", bad[0]);
}

#[test]
fn install_in_box_writes_0600_for_the_owner_and_drops_stale_copies() {
    let d = tempfile::tempdir().unwrap();
    let bx = d.path().join("box");
    std::fs::create_dir(&bx).unwrap();
    let a = Name::parse("a").unwrap();
    let b = Name::parse("b").unwrap();
    install_in_box(
        &bx,
        4242,
        &[(a.clone(), b"one".to_vec()), (b.clone(), b"two".to_vec())],
    )
    .unwrap();
    let dir = bx.join(BOX_SUBDIR);
    let dm = std::fs::metadata(&dir).unwrap();
    assert_eq!((dm.uid(), dm.mode() & 0o777), (0, 0o755));
    for (n, want) in [("a.toml", "one"), ("b.toml", "two")] {
        let md = std::fs::metadata(dir.join(n)).unwrap();
        assert_eq!(
            (md.uid(), md.gid(), md.mode() & 0o777),
            (4242, 4242, 0o600),
            "{n}"
        );
        assert_eq!(std::fs::read_to_string(dir.join(n)).unwrap(), want);
    }
    install_in_box(&bx, 4242, &[(b.clone(), b"three".to_vec())]).unwrap();
    assert!(
        !dir.join("a.toml").exists(),
        "a removed profile leaves the box"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("b.toml")).unwrap(),
        "three"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["b.toml"]);

    // A box that replaced the directory with its own (or a link) gets nothing written.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::lchown(&dir, Some(4242), None).unwrap();
    assert!(install_in_box(&bx, 4242, &[(b.clone(), b"x".to_vec())]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(d.path(), &dir).unwrap();
    assert!(install_in_box(&bx, 4242, &[(b, b"x".to_vec())]).is_err());
    assert!(
        !d.path().join("b.toml").exists(),
        "nothing written through the link"
    );
}

#[test]
fn refresh_rewrites_running_boxes_that_have_a_copy() {
    let (d, s) = store();
    s.save(&Name::parse("office").unwrap(), &office(), false)
        .unwrap();
    let root = d.path().join("box");
    for b in ["wlan0", "wlan1"] {
        std::fs::create_dir_all(root.join(b)).unwrap();
    }
    std::os::unix::fs::lchown(root.join("wlan0"), Some(4242), None).unwrap();
    install_in_box(&root.join("wlan0"), 4242, &[]).unwrap();
    let (done, errors) = refresh_boxes(&s, &root);
    assert_eq!((done, errors), (vec!["wlan0".to_string()], vec![]));
    let f = root.join("wlan0/networks/office.toml");
    assert_eq!(
        std::fs::metadata(&f).unwrap().uid(),
        4242,
        "the box dir's owner"
    );
    assert!(
        !root.join("wlan1/networks").exists(),
        "a box without a copy is left alone"
    );
}

#[test]
fn systemd_credentials_are_profiles_too_and_win_over_files() {
    let (d, s) = store();
    s.save(&Name::parse("office").unwrap(), &office(), false)
        .unwrap();
    s.save(&Name::parse("lab").unwrap(), &office(), false)
        .unwrap();
    let creds = d.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let cred = |n: &str, text: &str, mode: u32| {
        let p = creds.join(format!("{CREDENTIAL_PREFIX}{n}"));
        std::fs::write(&p, text).unwrap();
        chmod(&p, mode);
    };
    cred(
        "office",
        "ssid = \"FromCred\"\nsecurity = \"open\"\n",
        0o400,
    );
    cred("guest", "ssid = \"Guest\"\nsecurity = \"open\"\n", 0o400);
    cred("leaky", "ssid = \"Leaky\"\nsecurity = \"open\"\n", 0o444);
    std::fs::write(creds.join("token"), "not a network").unwrap();
    let s = s.with_credentials(Some(creds));
    let (files, bad) = s.for_box("wlan0").unwrap();
    let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["guest", "office", "lab"]);
    let office = parse(std::str::from_utf8(&files[1].1).unwrap()).unwrap();
    assert_eq!(office.ssid, "FromCred", "the credential wins");
    assert_eq!(bad.len(), 1);
    assert!(bad[0].to_string().contains("chmod 600"), "{}", bad[0]);
}
