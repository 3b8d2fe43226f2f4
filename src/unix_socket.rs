//! The one way this crate binds a Unix socket of its own (the agent's MCP socket, its DHCP hook
//! socket, the daemon's own listeners): create the directory, replace a stale socket file, bind,
//! set the mode.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::UnixListener;

/// Bind a fresh listening socket at `path` with permissions `mode` (e.g. `0o660`), replacing
/// whatever stale socket a previous run left there. Needs a tokio runtime.
pub fn bind_fresh(path: &Path, mode: u32) -> io::Result<UnixListener> {
    let with = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| with("creating the directory of", e))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with("removing the stale", e)),
    }
    let l = UnixListener::bind(path).map_err(|e| with("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| with("setting the mode of", e))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replaces_a_stale_socket_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/mcp.sock");
        let first = bind_fresh(&p, 0o660).unwrap();
        drop(first);
        // The file stays behind like after a crash; binding again replaces it.
        assert!(p.exists());
        let _l = bind_fresh(&p, 0o600).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::os::unix::net::UnixStream::connect(&p).unwrap();
    }
}
