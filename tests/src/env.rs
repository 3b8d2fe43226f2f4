//! Where things are and what the tests need: the repository, the built binaries, root and tools.
//! Every test fails (never skips) when something it drives for real is missing, and says how to
//! get it.

use std::path::{Path, PathBuf};

/// The repository root (this crate lives in its `tests/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Path of a binary built into this build's target dir: the product's (`wifi-isolate`,
/// `wifi-isolate-agent`) or a probe of this crate (`hwsim-agent-client`, ...). `cargo test
/// --workspace` builds them all before any test runs.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build --workspace --bins` (tests/run-all.sh does)",
        p.display()
    );
    p
}

/// `target/<profile>`: test binaries run from `target/<profile>/deps/`, probes from
/// `target/<profile>/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("target dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Fail (never skip) when not root; `what` names the suite.
pub fn require_root(what: &str) {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "{what} needs root (namespaces, container engines, QEMU): run it as root (sudo bash tests/run-all.sh)"
    );
}

/// The path of `tool` (on PATH, or in /usr/sbin, /sbin); fails with `hint` (how to get it).
pub fn require_tool(tool: &str, hint: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("missing tool `{tool}`: {hint}"))
}
