//! `wifi-isolate network add|list|show|remove`, the real binary, in a temp profiles dir
//! (`WIFI_ISOLATE_NETWORKS_DIR`) and a temp box root: the secret from stdin lands in a root
//! 0600 file and in the running box's copy (0600, the box dir's owner), and no output, no
//! argv, no error ever shows it. Needs root (profiles are root's); without it this FAILS.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

const PSK: &str = "s3cret-office-passphrase";

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn net(dir: &Path, boxes: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let mut c = Command::new(wifi_isolate_tests::env::bin("wifi-isolate"));
    c.arg("network")
        .args(args)
        .arg("--box-root")
        .arg(boxes)
        .env("WIFI_ISOLATE_NETWORKS_DIR", dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("running wifi-isolate");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let out = Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    assert!(
        !out.stdout.contains(PSK) && !out.stderr.contains(PSK),
        "{args:?} printed the secret:\n{}{}",
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn add_show_list_remove_with_the_secret_on_stdin_only() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("networks");
    let boxes = tmp.path().join("box");
    // A running netns box (its dir is the box uid's) that got a copy at its start.
    let bx = boxes.join("wlan0");
    std::fs::create_dir_all(bx.join("networks")).unwrap();
    std::os::unix::fs::lchown(&bx, Some(1_878_982_656), Some(1_878_982_656)).unwrap();

    let o = net(&dir, &boxes, &["--help"], None);
    assert_eq!(o.code, Some(0));
    for needle in [
        "add",
        "list",
        "show",
        "remove",
        "/etc/wifi-isolate/networks",
        "wifi_connect",
    ] {
        assert!(
            o.stdout.contains(needle),
            "--help lacks {needle}:\n{}",
            o.stdout
        );
    }
    let o = net(&dir, &boxes, &["add", "--help"], None);
    assert!(
        o.stdout.contains("--secret-stdin") && o.stdout.contains("never from the command line")
    );

    // No terminal and no --secret-stdin: refused, nothing written.
    let o = net(
        &dir,
        &boxes,
        &[
            "add",
            "office",
            "--ssid",
            "Office",
            "--security",
            "wpa2-psk",
        ],
        None,
    );
    assert_eq!(o.code, Some(1), "{}", o.stderr);
    assert!(o.stderr.contains("--secret-stdin"), "{}", o.stderr);
    assert!(!dir.join("office.toml").exists());

    let add = [
        "add",
        "office",
        "--ssid",
        "Office",
        "--security",
        "wpa2-psk",
        "--hidden",
        "--secret-stdin",
    ];
    let o = net(&dir, &boxes, &add, Some(&format!("{PSK}\n")));
    assert_eq!(o.code, Some(0), "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("running boxes updated: wlan0"),
        "{}",
        o.stdout
    );
    let f = dir.join("office.toml");
    let md = std::fs::metadata(&f).unwrap();
    assert_eq!((md.uid(), md.permissions().mode() & 0o777), (0, 0o600));
    assert!(std::fs::read_to_string(&f).unwrap().contains(PSK));
    let copy = bx.join("networks/office.toml");
    let cm = std::fs::metadata(&copy).unwrap();
    assert_eq!(
        (cm.uid(), cm.permissions().mode() & 0o777),
        (1_878_982_656, 0o600)
    );

    let o = net(&dir, &boxes, &["show", "office"], None);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    for line in [
        "ssid: Office",
        "security: wpa2-psk",
        "hidden: true",
        "psk: set",
    ] {
        assert!(
            o.stdout.contains(line),
            "show lacks {line:?}:\n{}",
            o.stdout
        );
    }
    let o = net(&dir, &boxes, &["list"], None);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stdout.contains("office") && o.stdout.contains("wpa2-psk"),
        "{}",
        o.stdout
    );

    // A profile others may read is refused, with the chmod, by show and list alike.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = net(&dir, &boxes, &["show", "office"], None);
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains(&format!("chmod 600 {}", f.display())),
        "{}",
        o.stderr
    );
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A bad passphrase: refused, the error does not repeat it, the old profile stays.
    let o = net(
        &dir,
        &boxes,
        &[&add[..], &["--replace"]].concat(),
        Some("short"),
    );
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains("8 to 63") && !o.stderr.contains("short\n"),
        "{}",
        o.stderr
    );
    assert!(std::fs::read_to_string(&f).unwrap().contains(PSK));

    let o = net(&dir, &boxes, &["remove", "office"], None);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        !f.exists() && !copy.exists(),
        "gone from the host and the running box"
    );
    let o = net(&dir, &boxes, &["show", "office"], None);
    assert_eq!(o.code, Some(1));
    assert!(
        o.stderr.contains("wifi-isolate network add office"),
        "{}",
        o.stderr
    );
}
