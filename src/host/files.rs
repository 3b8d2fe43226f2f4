//! Files the host writes for others to read (state, rules, profiles): whole or not at all.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

/// Write `bytes` to `path` through a temporary file beside it and a rename: readers see the old
/// file or the new one, never half of one. The directory is made if missing; on failure the
/// temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, bytes, false)
}

/// [`write_atomic`] for secrets: the temporary file is created with mode 0600 (and missing
/// directories 0700), so the secret is never readable by anyone but the owner, not even for a
/// moment.
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_via_temp(path, bytes, true)
}

/// The one way: the temporary file is created fresh (`O_EXCL`, no link followed — a stale one
/// is removed first), written and synced, then renamed over `path`.
fn write_via_temp(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        if private {
            dirs.mode(0o700);
        }
        dirs.create(d)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let done = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o666 })
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Write `bytes` as `name` in `dir` for `owner` alone (0600): a fresh `O_EXCL`/`O_NOFOLLOW`
/// temporary of a random name, synced, renamed into place inside `dir`.
pub fn write_owned_in(dir: &OwnedFd, name: &str, owner: u32, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!(".wi-{}.tmp", hex::encode(random_suffix()));
    let fd = openat(
        dir.as_fd(),
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut f = std::fs::File::from(fd);
    let written = fchown(
        f.as_fd(),
        Some(Uid::from_raw(owner)),
        Some(Gid::from_raw(owner)),
    )
    .map_err(std::io::Error::from)
    .and_then(|()| f.write_all(bytes))
    .and_then(|()| f.sync_all())
    .and_then(|()| renameat(dir.as_fd(), tmp.as_str(), dir.as_fd(), name).map_err(Into::into));
    if written.is_err() {
        let _ = unlinkat(dir.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

fn random_suffix() -> [u8; 8] {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("getrandom");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["x.json"]);
        // A target that cannot be replaced (a directory): an error, no temporary left.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        assert!(write_atomic(&dir.path().join("d"), b"x").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        assert!(!left.iter().any(|n| n.ends_with(".tmp")), "{left:?}");
    }

    #[test]
    fn private_files_are_0600_from_the_start_in_a_0700_dir() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new/secret.toml");
        write_atomic_private(&p, b"psk = 1").unwrap();
        write_atomic_private(&p, b"psk = 2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"psk = 2");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["secret.toml"]);
    }
}
