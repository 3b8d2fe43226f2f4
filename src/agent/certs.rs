//! EAP certificates and keys: where the agent lets wpa_supplicant read them from.
//!
//! MCP clients are trusted to drive the radio, not to read files through the agent. So a
//! certificate or key given as a **path** is accepted only inside the allowed directory — the
//! per-instance certs directory the host mounts read-only into every box at
//! [`DEFAULT_CERTS_DIR`] — after a lexical check (absolute or relative to that directory, no
//! `..`) and a walk that opens every component with `O_NOFOLLOW` (a symlink anywhere is refused)
//! and ends on a readable regular file.
//!
//! **PEM text** is written to a box-private upload directory (under the box's own `/run` tmpfs,
//! mode 0700, never the runtime directory the host shares) with a name unique to the call, mode
//! 0600. Uploads belong to the SSID they were given for: they are removed when that network is
//! forgotten or replaced, when a connect fails, and when the agent shuts down; on
//! `wifi_disconnect` the files go too, and the agent writes them again (same names) before a
//! `wifi_reconnect`, from the text it holds in memory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::validate::{FilePath, Ssid};

/// The allowed directory as the box sees it: the host's per-instance certs directory, which
/// every engine mounts read-only there.
pub const DEFAULT_CERTS_DIR: &str = crate::host::engine::BOX_CERTS_DIR;

/// Subdirectory of the agent's private runtime dir for PEM text given inline.
pub const UPLOAD_SUBDIR: &str = "certs";

/// One PEM text written for a call.
struct Upload {
    pem: String,
    /// The SSID whose configuration uses it; `None` until its connect succeeded.
    owner: Option<String>,
}

/// Certificate paths and PEM uploads of one agent.
pub struct Certs {
    allowed: PathBuf,
    upload_dir: PathBuf,
    seq: AtomicU64,
    uploads: Mutex<HashMap<PathBuf, Upload>>,
}

impl Certs {
    /// Paths are accepted below `allowed`; PEM text goes to `upload_dir` (created 0700).
    pub fn new(allowed: impl Into<PathBuf>, upload_dir: impl Into<PathBuf>) -> Self {
        Self {
            allowed: allowed.into(),
            upload_dir: upload_dir.into(),
            seq: AtomicU64::new(0),
            uploads: Mutex::default(),
        }
    }

    /// The allowed directory.
    pub fn allowed_dir(&self) -> &Path {
        &self.allowed
    }

    /// The upload directory.
    pub fn upload_dir(&self) -> &Path {
        &self.upload_dir
    }

    /// A certificate or key argument (`what` names it in errors): PEM text is stored and its
    /// new path returned (collect it in `uploads`); a path is checked and returned.
    pub fn resolve(
        &self,
        what: &str,
        value: &str,
        uploads: &mut Vec<PathBuf>,
    ) -> Result<FilePath, String> {
        if value.contains("-----BEGIN") {
            let path = self.upload(what, value)?;
            uploads.push(path.as_path().to_path_buf());
            Ok(path)
        } else {
            self.check_path(what, value)
        }
    }

    /// Check a path given by a client: inside the allowed directory, no `..`, no symlink in
    /// any component, a readable regular file. Returns the normalized absolute path.
    pub fn check_path(&self, what: &str, value: &str) -> Result<FilePath, String> {
        let allowed = self.allowed.display();
        if value.is_empty() || value.len() > 4096 || value.contains(['\n', '\0']) {
            return Err(format!(
                "{what}: give PEM text or a file path in {allowed} (the box's certificates \
                 directory)"
            ));
        }
        let rel = self.relative(value).map_err(|problem| {
            format!(
                "{what}: {value:?} {problem}; certificates and keys are read only from {allowed}"
            )
        })?;
        self.open_beneath(&rel).map_err(|problem| {
            format!(
                "{what}: {value:?} {problem}; certificates and keys are read only from {allowed}"
            )
        })?;
        let full = self.allowed.join(&rel);
        FilePath::parse(&full.display().to_string()).map_err(|e| format!("{what}: {e}"))
    }

    /// The lexically normalized path of `value` relative to the allowed directory.
    fn relative(&self, value: &str) -> Result<PathBuf, &'static str> {
        let p = Path::new(value);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.allowed.join(p)
        };
        let mut norm = PathBuf::new();
        for c in full.components() {
            match c {
                Component::ParentDir => return Err("contains a '..' component"),
                Component::CurDir => {}
                c => norm.push(c),
            }
        }
        let rel = norm
            .strip_prefix(&self.allowed)
            .map_err(|_| "is outside the certificates directory")?;
        if rel.as_os_str().is_empty() {
            return Err("is the certificates directory itself, not a file");
        }
        Ok(rel.to_path_buf())
    }

    /// Walk `rel` from the allowed directory, one `O_NOFOLLOW` open per component.
    fn open_beneath(&self, rel: &Path) -> Result<OwnedFd, String> {
        let base = nix::fcntl::open(
            &self.allowed,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            format!("cannot be read: the certificates directory cannot be opened ({e})")
        })?;
        let parts: Vec<&OsStr> = rel.iter().collect();
        let (last, dirs) = parts.split_last().ok_or("names no file")?;
        let mut dir = base;
        for d in dirs {
            dir = openat(
                dir.as_fd(),
                *d,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| match e {
                nix::errno::Errno::ENOTDIR | nix::errno::Errno::ELOOP => format!(
                    "goes through {:?}, which is a symlink or not a directory",
                    d
                ),
                nix::errno::Errno::ENOENT => "does not exist".to_string(),
                e => format!("cannot be opened ({e})"),
            })?;
        }
        // O_PATH first: see what it is without opening a FIFO or device for reading.
        let probe = openat(
            dir.as_fd(),
            *last,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ENOENT => "does not exist".to_string(),
            e => format!("cannot be opened ({e})"),
        })?;
        let kind = file_kind(&probe)?;
        if kind == SFlag::S_IFLNK {
            return Err("is a symlink".into());
        }
        if kind != SFlag::S_IFREG {
            return Err("is not a regular file".into());
        }
        let fd = openat(
            dir.as_fd(),
            *last,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cannot be read ({e})"))?;
        if file_kind(&fd)? != SFlag::S_IFREG {
            return Err("is not a regular file".into());
        }
        Ok(fd)
    }

    /// Write PEM text to a new 0600 file with a name of its own.
    fn upload(&self, what: &str, pem: &str) -> Result<FilePath, String> {
        self.prepare_dir()
            .map_err(|e| format!("{what}: cannot store the PEM text: {e}"))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        loop {
            let n = self.seq.fetch_add(1, Ordering::Relaxed);
            let path = self.upload_dir.join(format!("{what}-{stamp:x}-{n}.pem"));
            match write_new(&path, pem) {
                Ok(()) => {
                    let fp = FilePath::parse(&path.display().to_string())
                        .map_err(|e| format!("{what}: {e}"))?;
                    self.lock().insert(
                        path,
                        Upload {
                            pem: pem.to_string(),
                            owner: None,
                        },
                    );
                    return Ok(fp);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    return Err(format!("{what}: cannot store the PEM text: {e}"));
                }
            }
        }
    }

    /// Create the upload directory (0700); refuse one that is a symlink or not ours to use.
    fn prepare_dir(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.upload_dir)?;
        let md = std::fs::symlink_metadata(&self.upload_dir)?;
        if !md.is_dir() {
            return Err(std::io::Error::other(format!(
                "{} is not a directory",
                self.upload_dir.display()
            )));
        }
        std::fs::set_permissions(&self.upload_dir, std::fs::Permissions::from_mode(0o700))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Upload>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connect with `uploads` succeeded for `ssid`: they now belong to it, and what an
    /// earlier configuration of the same SSID uploaded goes.
    pub fn adopt(&self, uploads: &[PathBuf], ssid: &Ssid) {
        let owner = ssid.to_hex();
        let mut map = self.lock();
        map.retain(|path, u| {
            let stale = u.owner.as_deref() == Some(owner.as_str()) && !uploads.contains(path);
            if stale {
                let _ = std::fs::remove_file(path);
            }
            !stale
        });
        for p in uploads {
            if let Some(u) = map.get_mut(p) {
                u.owner = Some(owner.clone());
            }
        }
    }

    /// Remove these uploads (their connect failed, or their arguments were refused).
    pub fn discard(&self, uploads: &[PathBuf]) {
        let mut map = self.lock();
        for p in uploads {
            map.remove(p);
            let _ = std::fs::remove_file(p);
        }
    }

    /// `ssid` was forgotten: remove what was uploaded for it.
    pub fn forget(&self, ssid: &Ssid) {
        let owner = ssid.to_hex();
        self.lock().retain(|path, u| {
            let mine = u.owner.as_deref() == Some(owner.as_str());
            if mine {
                let _ = std::fs::remove_file(path);
            }
            !mine
        });
    }

    /// Disconnected: remove the files of configured networks, keep the text for a reconnect.
    /// (Uploads of a connect still under way are left to it.)
    pub fn remove_files(&self) {
        for (path, _) in self.lock().iter().filter(|(_, u)| u.owner.is_some()) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Before a reconnect: write the files of configured networks again, under their names.
    pub fn restore_files(&self) -> Result<(), String> {
        if self.lock().values().all(|u| u.owner.is_none()) {
            return Ok(());
        }
        self.prepare_dir()
            .map_err(|e| format!("cannot restore the uploaded certificates: {e}"))?;
        for (path, u) in self.lock().iter().filter(|(_, u)| u.owner.is_some()) {
            if std::fs::symlink_metadata(path).is_err() {
                write_new(path, &u.pem)
                    .map_err(|e| format!("cannot restore {}: {e}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Agent shutdown: remove every upload and the directory.
    pub fn clear(&self) {
        let mut map = self.lock();
        for path in map.keys() {
            let _ = std::fs::remove_file(path);
        }
        map.clear();
        let _ = std::fs::remove_dir(&self.upload_dir);
    }

    /// The uploads currently on disk (for tests and diagnostics).
    pub fn files_on_disk(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.lock().keys().filter(|p| p.exists()).cloned().collect();
        v.sort();
        v
    }
}

fn file_kind(fd: &OwnedFd) -> Result<SFlag, String> {
    let st = fstat(fd).map_err(|e| format!("cannot be examined ({e})"))?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

/// Create `path` (never an existing file or symlink), mode 0600, with `text`.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    struct Lab {
        _tmp: tempfile::TempDir,
        allowed: PathBuf,
        outside: PathBuf,
        certs: Certs,
    }

    fn lab() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("certs");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::write(allowed.join("ca.pem"), PEM).unwrap();
        std::fs::write(allowed.join("sub/client.pem"), PEM).unwrap();
        let outside = tmp.path().join("secret");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("key.pem"), "root-only").unwrap();
        let certs = Certs::new(&allowed, tmp.path().join("private/certs"));
        Lab {
            allowed,
            outside,
            certs,
            _tmp: tmp,
        }
    }

    fn path_of(l: &Lab, v: &str) -> Result<String, String> {
        l.certs
            .check_path("ca_cert", v)
            .map(|p| p.as_str().to_string())
    }

    #[test]
    fn paths_inside_the_allowed_dir_are_accepted_normalized() {
        let l = lab();
        let ca = l.allowed.join("ca.pem").display().to_string();
        assert_eq!(path_of(&l, &ca).unwrap(), ca);
        assert_eq!(path_of(&l, "ca.pem").unwrap(), ca, "relative to the dir");
        let messy = format!("{}/./sub//client.pem", l.allowed.display());
        assert_eq!(
            path_of(&l, &messy).unwrap(),
            l.allowed.join("sub/client.pem").display().to_string()
        );
    }

    #[test]
    fn dotdot_outside_and_the_dir_itself_are_refused_naming_the_dir() {
        let l = lab();
        let dir = l.allowed.display().to_string();
        for bad in [
            format!("{dir}/../secret/key.pem"),
            "../secret/key.pem".to_string(),
            l.outside.join("key.pem").display().to_string(),
            "/etc/shadow".to_string(),
            dir.clone(),
            format!("{dir}/."),
            format!("{dir}-evil/ca.pem"),
        ] {
            let e = path_of(&l, &bad).unwrap_err();
            assert!(e.contains(&dir), "{bad}: {e}");
        }
        assert!(path_of(&l, "../x").unwrap_err().contains("'..'"));
        assert!(path_of(&l, "/etc/shadow").unwrap_err().contains("outside"));
        assert!(path_of(&l, "a\nb").is_err());
    }

    #[test]
    fn a_symlink_in_any_component_is_refused() {
        let l = lab();
        let target = l.outside.join("key.pem");
        // The last component: a link to a file outside.
        std::os::unix::fs::symlink(&target, l.allowed.join("link.pem")).unwrap();
        let e = path_of(&l, "link.pem").unwrap_err();
        assert!(e.contains("symlink"), "{e}");
        // A link to a file inside is refused as well: no symlinks at all.
        std::os::unix::fs::symlink(l.allowed.join("ca.pem"), l.allowed.join("inner.pem")).unwrap();
        assert!(path_of(&l, "inner.pem").unwrap_err().contains("symlink"));
        // A directory component.
        std::os::unix::fs::symlink(&l.outside, l.allowed.join("d")).unwrap();
        let e = path_of(&l, "d/key.pem").unwrap_err();
        assert!(e.contains("symlink"), "{e}");
        assert!(!e.contains("root-only"));
    }

    #[test]
    fn non_regular_files_and_missing_ones_are_refused() {
        let l = lab();
        assert!(
            path_of(&l, "sub")
                .unwrap_err()
                .contains("not a regular file")
        );
        nix::unistd::mkfifo(&l.allowed.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        // Must not hang opening the FIFO.
        assert!(
            path_of(&l, "fifo")
                .unwrap_err()
                .contains("not a regular file")
        );
        let sock = l.allowed.join("s.sock");
        let _s = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(
            path_of(&l, "s.sock")
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            path_of(&l, "nope.pem")
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn pem_text_gets_a_private_file_of_its_own_per_call() {
        let l = lab();
        let mut ups = Vec::new();
        let a = l.certs.resolve("ca_cert", PEM, &mut ups).unwrap();
        let b = l.certs.resolve("ca_cert", PEM, &mut ups).unwrap();
        assert_ne!(a.as_path(), b.as_path(), "per-call names");
        assert!(a.as_path().starts_with(l.certs.upload_dir()));
        assert_eq!(ups.len(), 2);
        assert_eq!(std::fs::read_to_string(a.as_path()).unwrap(), PEM);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(a.as_path()), 0o600);
        assert_eq!(mode(l.certs.upload_dir()), 0o700);
        // A path argument is not an upload.
        l.certs.resolve("ca_cert", "ca.pem", &mut ups).unwrap();
        assert_eq!(ups.len(), 2);
    }

    #[test]
    fn uploads_go_on_discard_forget_replace_disconnect_and_shutdown() {
        let l = lab();
        let lab_ssid = Ssid::parse("lab").unwrap();
        let other = Ssid::parse("other").unwrap();
        let up = |n: usize| {
            let mut v = Vec::new();
            for _ in 0..n {
                l.certs.resolve("private_key", PEM, &mut v).unwrap();
            }
            v
        };
        // A failed connect: discarded.
        let failed = up(2);
        l.certs.discard(&failed);
        assert!(failed.iter().all(|p| !p.exists()));
        // Two networks; a replacement of "lab" removes its older upload only.
        let first = up(1);
        l.certs.adopt(&first, &lab_ssid);
        let theirs = up(1);
        l.certs.adopt(&theirs, &other);
        let second = up(1);
        l.certs.adopt(&second, &lab_ssid);
        assert!(!first[0].exists() && second[0].exists() && theirs[0].exists());
        // Disconnect removes the files (not those of a connect under way); a reconnect writes
        // them again, same names.
        let pending = up(1);
        l.certs.remove_files();
        assert_eq!(l.certs.files_on_disk(), pending);
        assert!(!second[0].exists());
        l.certs.discard(&pending);
        l.certs.restore_files().unwrap();
        assert_eq!(std::fs::read_to_string(&second[0]).unwrap(), PEM);
        assert!(theirs[0].exists());
        // Forget: only that SSID's files.
        l.certs.forget(&lab_ssid);
        assert!(!second[0].exists() && theirs[0].exists());
        l.certs.restore_files().unwrap();
        assert!(!second[0].exists(), "a forgotten upload came back");
        // Shutdown: everything, and the directory.
        l.certs.clear();
        assert!(!theirs[0].exists());
        assert!(!l.certs.upload_dir().exists());
    }
}
