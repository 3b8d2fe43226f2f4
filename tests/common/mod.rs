//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of one of the crate's binaries, built by cargo for this test run.
pub fn bin(name: &str) -> PathBuf {
    let dir = target_dir();
    let p = dir.join(name);
    assert!(p.is_file(), "{} is not built", p.display());
    p
}

/// Path of one of the crate's examples (cargo test builds them).
pub fn example(name: &str) -> PathBuf {
    let p = target_dir().join("examples").join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo test --all-targets` or `cargo build --examples`",
        p.display()
    );
    p
}

fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf()
}

/// Fail (never skip) when not root.
pub fn require_root(what: &str) {
    if !nix::unistd::Uid::effective().is_root() {
        panic!(
            "{what} needs root (namespaces, QEMU); run the suite as root: sudo bash tests/run-all.sh"
        );
    }
}

/// Fail (never skip) when `tool` is not on PATH; `hint` says how to get it.
pub fn require_tool(tool: &str, hint: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    assert!(found, "missing tool {tool}: {hint}");
}

/// The hwsim VM harness.
pub mod hwsim {
    use std::process::Command;
    use std::sync::Mutex;

    /// One VM at a time: two TCG guests on two cores would only slow each other down.
    static VM: Mutex<()> = Mutex::new(());

    /// Boot the lab with `aps` and `stations`, run `script` inside with `bins`, assert PASS.
    pub fn run(name: &str, aps: &str, stations: u32, script: &str, bins: &[std::path::PathBuf]) {
        run_with(name, aps, stations, script, bins, "", &[]);
    }

    /// [`run`] with extra QEMU arguments and files placed in the share before boot.
    pub fn run_with(
        name: &str,
        aps: &str,
        stations: u32,
        script: &str,
        bins: &[std::path::PathBuf],
        qemu_extra: &str,
        files: &[(&str, Vec<u8>)],
    ) {
        super::require_root("the hwsim VM suite");
        let _one = VM.lock().unwrap_or_else(|e| e.into_inner());
        let repo = super::repo();
        let share = repo.join("target").join("hwsim").join(name);
        let _ = std::fs::remove_dir_all(&share);
        std::fs::create_dir_all(&share).expect("creating the share dir");
        for (f, content) in files {
            std::fs::write(share.join(f), content).expect("writing a share file");
        }
        let mut cmd = Command::new("bash");
        if !qemu_extra.is_empty() {
            cmd.env("WI_QEMU_EXTRA", qemu_extra);
        }
        cmd.arg(repo.join("tests/hwsim/run-vm.sh"))
            .args(["--aps", aps, "--stations", &stations.to_string()])
            .arg("--share")
            .arg(&share)
            .arg("--script")
            .arg(repo.join(script))
            .args(["--timeout", "420", "--mem", "1024", "--quiet"]);
        for b in bins {
            cmd.arg("--bin").arg(b);
        }
        let status = cmd.status().expect("running tests/hwsim/run-vm.sh");
        let test_log = std::fs::read_to_string(share.join("logs/test.log")).unwrap_or_default();
        println!("{test_log}");
        assert!(
            status.success(),
            "hwsim VM suite '{name}' failed; logs in {}",
            share.join("logs").display()
        );
    }
}
