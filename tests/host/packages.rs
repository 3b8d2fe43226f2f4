//! The packages: `packaging/build-deb.sh` and `packaging/build-rpm.sh` build them for real (from
//! the repo's release build), then the tests check what they hold, that lintian is clean, and
//! that the .deb installs into a clean Debian 12 root (a cached `mmdebstrap` chroot, dependencies
//! from the Debian archive) and purges without a trace.
//!
//! Needs root (chroot, mounts) and the tools of `tests/deps.sh packaging`; a missing tool fails the
//! test, it never skips. The chroot tarball is cached in `.cache/pkgroot/`, keyed by its package
//! list.

use wifi_isolate_tests::env as common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wifi_isolate::host::config::Settings;

/// Packages in the cached clean root besides the apt variant's: systemd (systemd-sysusers,
/// systemd-tmpfiles, systemd.pc), udev (udev.pc) and pkg-config, to ask where units and rules go.
const ROOT_PACKAGES: &[&str] = &["systemd", "udev", "pkgconf"];
const SUITE: &str = "bookworm";

use common::repo;

fn need_root() {
    common::require_root("tests/host/packages.rs (dpkg-buildpackage, chroot, mounts)");
}

fn need_tools(tools: &[&str]) {
    for t in tools {
        common::require_tool(t, "run tests/deps.sh packaging");
    }
}

/// Runs `cmd`, stderr straight through (progress), and returns its stdout; panics on failure.
fn run(what: &str, cmd: &mut Command) -> String {
    println!("==> {what}: {cmd:?}");
    run_quiet(what, cmd)
}

fn run_quiet(what: &str, cmd: &mut Command) -> String {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}",
        out.status
    );
    stdout
}

/// The last stdout line of a build script: the package path.
fn last_line(s: &str) -> PathBuf {
    PathBuf::from(
        s.lines()
            .last()
            .expect("build script printed nothing")
            .trim(),
    )
}

/// The udev rule file names in the source tree (`udev/*-wifi-isolate.rules`).
fn udev_rules() -> Vec<String> {
    let v: Vec<String> = std::fs::read_dir(repo().join("udev"))
        .expect("udev/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-wifi-isolate.rules"))
        .collect();
    assert_eq!(
        v.len(),
        1,
        "expected one udev/*-wifi-isolate.rules, have {v:?}"
    );
    v
}

/// Paths both packages must ship, with `{units}`, `{udev}`, `{lib}` for the distribution's dirs.
fn expected(units: &str, udev: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "/usr/bin/wifi-isolate",
        "/usr/bin/wifi-isolate-agent",
        "/usr/lib/sysusers.d/wifi-isolate.conf",
        "/usr/lib/tmpfiles.d/wifi-isolate.conf",
        "/usr/lib/wifi-isolate/config.toml",
        "/usr/share/man/man8/wifi-isolate.8.gz",
        "/usr/share/man/man8/wifi-isolate-agent.8.gz",
    ]
    .map(String::from)
    .into();
    v.push(format!("{units}/wifi-isolate@.service"));
    v.push(format!("{units}/wifi-isolate@.socket"));
    for r in udev_rules() {
        v.push(format!("{udev}/rules.d/{r}"));
    }
    v
}

/// Paths of the regular files and links in a .deb (`dpkg-deb -c`), as absolute paths.
fn deb_files(deb: &Path) -> BTreeSet<String> {
    run("dpkg-deb -c", Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

#[test]
fn default_config_sets_exactly_the_builtin_defaults() {
    let dir = repo().join("packaging");
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    println!("==> packaging/config.toml parses and equals Settings::default()");
    let (s, files) =
        Settings::load_from(std::slice::from_ref(&dir), "wlan0").expect("config.toml loads");
    assert_eq!(files, vec![dir.join("config.toml")]);
    assert_eq!(
        s,
        Settings::default(),
        "config.toml differs from the defaults"
    );
    // Every key is there, set or commented out, with a comment line above it.
    let all = toml::Value::try_from(Settings::default()).unwrap();
    let mut keys: Vec<String> = Vec::new();
    for (section, t) in all.as_table().unwrap() {
        assert!(text.contains(&format!("\n[{section}]\n")), "no [{section}]");
        keys.extend(t.as_table().unwrap().keys().cloned());
    }
    keys.extend(["country".into(), "check_url".into()]); // None: not serialized
    let lines: Vec<&str> = text.lines().collect();
    for k in keys {
        let i = lines
            .iter()
            .position(|l| {
                l.trim_start_matches('#').starts_with(&format!("{k} = ")) && !l.starts_with("# ")
            })
            .unwrap_or_else(|| panic!("config.toml lacks key {k}"));
        assert!(
            i > 0 && lines[i - 1].starts_with("# "),
            "config.toml: key {k} has no comment above it"
        );
    }
}

#[test]
fn deb_has_every_file_is_lintian_clean_and_installs_into_a_clean_bookworm() {
    need_root();
    need_tools(&[
        "dpkg-buildpackage",
        "dh",
        "help2man",
        "lintian",
        "dpkg-deb",
        "mmdebstrap",
        "unshare",
        "chroot",
        "flock",
    ]);
    // The clean root is made (or taken from the cache) while the package builds.
    let root_tar = std::thread::spawn(clean_root_tarball);

    let out = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let stdout = run(
        "packaging/build-deb.sh (with lintian: errors and warnings fail)",
        Command::new(repo().join("packaging/build-deb.sh"))
            .arg("--out")
            .arg(out.path()),
    );
    let deb = last_line(&stdout);
    println!("    built {} in {:.0?}", deb.display(), t0.elapsed());
    assert!(deb.is_file() && deb.starts_with(out.path()), "{deb:?}");

    let files = deb_files(&deb);
    // bookworm: packages ship units and udev rules under /lib (lintian 2.116).
    for p in expected("/lib/systemd/system", "/lib/udev") {
        assert!(files.contains(&p), "the .deb lacks {p}; it has {files:#?}");
    }
    assert!(files.contains("/usr/share/doc/wifi-isolate/README.md.gz"));
    assert!(files.contains("/usr/share/doc/wifi-isolate/copyright"));
    let info = run("dpkg-deb -f", Command::new("dpkg-deb").arg("-f").arg(&deb));
    println!("{info}");
    for want in [
        "Section: net",
        "wpasupplicant",
        "bubblewrap (>= 0.8)",
        "busybox | busybox-static",
        "systemd | systemd-standalone-sysusers",
        "Recommends: podman | docker.io",
        "Suggests: network-manager",
    ] {
        assert!(info.contains(want), "control lacks {want:?}");
    }

    let root_tar = root_tar.join().expect("clean root");
    install_and_purge(&deb, &root_tar, &files);
}

/// A minimal bookworm root as a tarball, from the cache or made with mmdebstrap.
fn clean_root_tarball() -> PathBuf {
    let dir = repo().join(".cache/pkgroot");
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join(format!("{SUITE}-apt-{}.tar", ROOT_PACKAGES.join("_")));
    if tar.is_file() {
        println!("==> clean root: cached {}", tar.display());
        return tar;
    }
    let tmp = tar.with_extension("tar.part");
    let t0 = std::time::Instant::now();
    run(
        "mmdebstrap (clean root, cached afterwards)",
        Command::new("mmdebstrap")
            .args(["--quiet", "--variant=apt", "--mode=root", "--format=tar"])
            .arg(format!("--include={}", ROOT_PACKAGES.join(",")))
            .args([SUITE])
            .arg(&tmp),
    );
    std::fs::rename(&tmp, &tar).unwrap();
    println!("    made {} in {:.0?}", tar.display(), t0.elapsed());
    tar
}

/// Runs `script` with `sh -e` chrooted into `root`, in mount and PID namespaces of its own (so
/// /dev and /proc mounts vanish with it, and /proc shows only its processes). Returns stdout.
fn in_root(what: &str, root: &Path, script: &str) -> String {
    let outer = r#"set -e
R="$1"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
cp -L /etc/resolv.conf "$R/etc/resolv.conf"
exec chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 /bin/sh -ec "$2"
"#;
    println!("==> {what}: in the clean root {}:", root.display());
    for l in script.lines() {
        println!("    # {l}");
    }
    let out = run_quiet(
        what,
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--pid", "--fork"])
            .args(["sh", "-ec", outer, "sh"])
            .arg(root)
            .arg(script),
    );
    print!("{out}");
    out
}

/// Processes that run a wifi-isolate binary (in the namespace of the script).
const NO_PROCESSES: &str = r#"
for p in /proc/[0-9]*; do
  exe="$(readlink "$p/exe" 2>/dev/null || true)"
  case "$exe" in *wifi-isolate*) echo "still running: $p $exe"; exit 1 ;; esac
done
echo "no wifi-isolate processes"
"#;

fn install_and_purge(deb: &Path, root_tar: &Path, files: &BTreeSet<String>) {
    let t0 = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run(
        "unpack the clean root",
        Command::new("tar")
            .arg("-xf")
            .arg(root_tar)
            .arg("-C")
            .arg(&root),
    );
    std::fs::copy(deb, root.join("tmp/wifi-isolate.deb")).unwrap();

    in_root(
        "apt-get install the .deb (dependencies from the archive)",
        &root,
        r#"apt-get update -qq
apt-get install -y -q --no-install-recommends /tmp/wifi-isolate.deb
dpkg -s wifi-isolate | grep -qx 'Status: install ok installed'"#,
    );

    // Where systemd and udev of that root look.
    let dirs = in_root(
        "pkg-config: unit, udev, sysusers and tmpfiles dirs",
        &root,
        r#"pkg-config --variable=systemdsystemunitdir systemd
pkg-config --variable=udevdir udev
pkg-config --variable=sysusersdir systemd
pkg-config --variable=tmpfilesdir systemd"#,
    );
    let d: Vec<&str> = dirs.lines().map(str::trim).collect();
    assert_eq!(d.len(), 4, "{dirs}");
    println!(
        "    units {}, udev {}, sysusers {}, tmpfiles {}",
        d[0], d[1], d[2], d[3]
    );
    let mut want = expected(d[0], d[1]);
    want.retain(|p| !p.contains("sysusers.d") && !p.contains("tmpfiles.d"));
    want.push(format!("{}/wifi-isolate.conf", d[2]));
    want.push(format!("{}/wifi-isolate.conf", d[3]));
    for p in &want {
        let host = root.join(p.trim_start_matches('/'));
        assert!(host.is_file(), "installed root lacks {p}");
    }

    let check = in_root(
        "installed: group, runtime dir, binaries, configuration",
        &root,
        r#"getent group wifi-isolate
test -d /run/wifi-isolate && echo "runtime dir /run/wifi-isolate"
wifi-isolate --version
wifi-isolate-agent --version
timeout 60 wifi-isolate doctor 2>&1 | grep '^ok    configuration' || true
man_ok=1; for m in wifi-isolate wifi-isolate-agent; do
  zcat /usr/share/man/man8/$m.8.gz | grep -q '^\.TH' || man_ok=0; done
[ "$man_ok" = 1 ] && echo "man pages ok"
# What `wifi-isolate enable wlan0` leaves (it needs a real adapter): purge must remove it.
mkdir -p /etc/systemd/system/sockets.target.wants /etc/udev/rules.d
ln -s /lib/systemd/system/wifi-isolate@.socket \
  /etc/systemd/system/sockets.target.wants/wifi-isolate@wlan0.socket
echo 'ENV{WIFI_ISOLATE}="1"' > /etc/udev/rules.d/81-wifi-isolate-wlan0.rules"#,
    );
    assert!(
        check.lines().any(|l| l.starts_with("wifi-isolate:")),
        "group wifi-isolate missing (sysusers did not run)"
    );
    assert!(
        check.contains("runtime dir /run/wifi-isolate"),
        "tmpfiles did not run"
    );
    assert!(
        check.contains("/usr/lib/wifi-isolate/config.toml"),
        "doctor: {check}"
    );
    assert!(check.contains("man pages ok"));

    let purge = in_root(
        "apt-get purge, then look for processes",
        &root,
        &format!(
            "apt-get purge -y -q wifi-isolate\n\
             ! dpkg -s wifi-isolate 2>/dev/null | grep -q '^Status: install'\n{NO_PROCESSES}"
        ),
    );
    assert!(purge.contains("no wifi-isolate processes"), "{purge}");
    let mut left: Vec<String> = files
        .iter()
        .map(String::as_str)
        .chain([
            "/usr/lib/wifi-isolate",
            "/usr/share/doc/wifi-isolate",
            "/run/wifi-isolate",
            "/etc/wifi-isolate",
            "/etc/systemd/system/sockets.target.wants/wifi-isolate@wlan0.socket",
            "/etc/udev/rules.d/81-wifi-isolate-wlan0.rules",
        ])
        .filter(|p| {
            root.join(p.trim_start_matches('/'))
                .symlink_metadata()
                .is_ok()
        })
        .map(String::from)
        .collect();
    left.extend(
        std::fs::read_dir(root.join("var/lib/dpkg/info"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("wifi-isolate.")),
    );
    assert!(left.is_empty(), "left after purge: {left:?}");
    // And nothing on the host runs from that root.
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        if let Ok(r) = std::fs::read_link(e.path().join("root")) {
            assert!(
                !r.starts_with(&root),
                "process {:?} still in the root",
                e.path()
            );
        }
    }
    println!("    install + purge in {:.0?}", t0.elapsed());
}

#[test]
fn rpm_has_every_file_and_the_scriptlets() {
    need_root();
    need_tools(&["rpmbuild", "rpm", "help2man", "flock"]);
    let out = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let stdout = run(
        "packaging/build-rpm.sh",
        Command::new(repo().join("packaging/build-rpm.sh"))
            .arg("--out")
            .arg(out.path()),
    );
    let rpm = last_line(&stdout);
    println!("    built {} in {:.0?}", rpm.display(), t0.elapsed());
    assert!(rpm.is_file() && rpm.starts_with(out.path()), "{rpm:?}");

    let list = run("rpm -qlp", Command::new("rpm").arg("-qlp").arg(&rpm));
    let files: BTreeSet<&str> = list.lines().collect();
    for p in expected("/usr/lib/systemd/system", "/usr/lib/udev") {
        assert!(
            files.contains(p.as_str()),
            "the RPM lacks {p}; it has {files:#?}"
        );
    }
    let scripts = run(
        "rpm -qp --scripts",
        Command::new("rpm").args(["-qp", "--scripts"]).arg(&rpm),
    );
    println!("{scripts}");
    for want in [
        "preinstall scriptlet",
        "systemd-sysusers",
        "systemd-tmpfiles --create /usr/lib/tmpfiles.d/wifi-isolate.conf",
        "udevadm control --reload",
        "systemd-update-helper install-system-units wifi-isolate@.socket",
        "systemd-update-helper remove-system-units 'wifi-isolate@*.socket'",
        "systemctl stop 'wifi-isolate@*.socket' 'wifi-isolate@*.service'",
        "mark-restart-system-units 'wifi-isolate@*.service'",
    ] {
        assert!(scripts.contains(want), "RPM scriptlets lack {want:?}");
    }
    let requires = run(
        "rpm -qp --requires",
        Command::new("rpm").args(["-qp", "--requires"]).arg(&rpm),
    );
    for want in ["wpa_supplicant", "busybox", "bubblewrap >= 0.8"] {
        assert!(
            requires.lines().any(|l| l.trim() == want),
            "Requires lacks {want}"
        );
    }
}
