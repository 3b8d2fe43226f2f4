//! rfkill for one wiphy, through sysfs (`/sys/class/ieee80211/PHY/rfkillN/{soft,hard}`).
//!
//! rfkill is global state: a soft block set in the host also silences the radio in the box, so
//! the daemon unblocks the adapter before it moves it. A hard block (a switch, a BIOS setting) can
//! not be lifted from software; [`unblock_phy`] says so instead of pretending.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel lists wiphys (and their rfkill switches) in sysfs.
pub const IEEE80211_CLASS: &str = "/sys/class/ieee80211";

/// The rfkill state of a wiphy: `(soft, hard)`, each `true` when blocked.
///
/// `None` when the wiphy has no rfkill switch or does not exist in this network namespace.
/// With several switches under one wiphy (rare), a block on any of them counts.
pub fn state(phy: &str) -> Option<(bool, bool)> {
    state_at(Path::new(IEEE80211_CLASS), phy)
}

/// Lift the soft block of `phy_name` (writes `0` to every `rfkillN/soft` under the wiphy).
///
/// Returns whether it was soft-blocked before. A wiphy without an rfkill switch is not blocked
/// (`Ok(false)`). A hard block is an error: software cannot clear it.
pub fn unblock_phy(phy_name: &str) -> io::Result<bool> {
    unblock_phy_at(Path::new(IEEE80211_CLASS), phy_name)
}

/// One `rfkillN` directory under a wiphy.
#[derive(Debug)]
struct Switch {
    dir: PathBuf,
    soft: bool,
    hard: bool,
}

fn phy_dir(root: &Path, phy: &str) -> io::Result<PathBuf> {
    if phy.is_empty() || phy.contains('/') || phy == "." || phy == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a wiphy name: {phy:?}"),
        ));
    }
    Ok(root.join(phy))
}

/// Parse a sysfs boolean (`0`/`1`, trailing newline allowed).
fn parse_flag(text: &str) -> Option<bool> {
    match text.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn read_flag(path: &Path) -> io::Result<bool> {
    let text = fs::read_to_string(path)?;
    parse_flag(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: expected 0 or 1, found {:?}",
                path.display(),
                text.trim()
            ),
        )
    })
}

/// The rfkill switches of a wiphy, sorted by name. `Err(NotFound)` if the wiphy does not exist.
fn switches(root: &Path, phy: &str) -> io::Result<Vec<Switch>> {
    let dir = phy_dir(root, phy)?;
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name.strip_prefix("rfkill") else {
            continue;
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = entry.path();
        found.push(Switch {
            soft: read_flag(&path.join("soft"))?,
            hard: read_flag(&path.join("hard"))?,
            dir: path,
        });
    }
    found.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(found)
}

pub(crate) fn state_at(root: &Path, phy: &str) -> Option<(bool, bool)> {
    let found = switches(root, phy).ok()?;
    if found.is_empty() {
        return None;
    }
    let soft = found.iter().any(|s| s.soft);
    let hard = found.iter().any(|s| s.hard);
    Some((soft, hard))
}

pub(crate) fn unblock_phy_at(root: &Path, phy: &str) -> io::Result<bool> {
    let found = switches(root, phy).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no wiphy {phy} in {}", root.display()),
            )
        } else {
            e
        }
    })?;
    if let Some(hard) = found.iter().find(|s| s.hard) {
        return Err(io::Error::other(format!(
            "{phy} is hard-blocked by rfkill ({}): a hardware switch, key or firmware setting \
             turned the radio off; software cannot clear it",
            hard.dir.display()
        )));
    }
    let mut was_blocked = false;
    for switch in found.iter().filter(|s| s.soft) {
        was_blocked = true;
        let soft = switch.dir.join("soft");
        fs::write(&soft, "0")
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", soft.display())))?;
    }
    Ok(was_blocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_switch(root: &Path, phy: &str, n: u32, soft: &str, hard: &str) -> PathBuf {
        let dir = root.join(phy).join(format!("rfkill{n}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("soft"), soft).unwrap();
        fs::write(dir.join("hard"), hard).unwrap();
        fs::write(dir.join("name"), format!("{phy}\n")).unwrap();
        dir
    }

    #[test]
    fn parses_flags() {
        assert_eq!(parse_flag("0\n"), Some(false));
        assert_eq!(parse_flag("1"), Some(true));
        assert_eq!(parse_flag(" 1 \n"), Some(true));
        assert_eq!(parse_flag("2"), None);
        assert_eq!(parse_flag(""), None);
    }

    #[test]
    fn no_switch_means_no_state_and_not_blocked() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("phy0")).unwrap();
        fs::write(tmp.path().join("phy0/index"), "0\n").unwrap();
        assert_eq!(state_at(tmp.path(), "phy0"), None);
        assert!(!unblock_phy_at(tmp.path(), "phy0").unwrap());
    }

    #[test]
    fn missing_phy() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(state_at(tmp.path(), "phy9"), None);
        let err = unblock_phy_at(tmp.path(), "phy9").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("phy9"), "{err}");
    }

    #[test]
    fn rejects_path_like_names() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", "..", ".", "phy0/../x"] {
            assert_eq!(state_at(tmp.path(), bad), None);
            let err = unblock_phy_at(tmp.path(), bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn unblocks_a_soft_block() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fake_switch(tmp.path(), "phy1", 3, "1\n", "0\n");
        assert_eq!(state_at(tmp.path(), "phy1"), Some((true, false)));
        assert!(unblock_phy_at(tmp.path(), "phy1").unwrap());
        assert_eq!(fs::read_to_string(dir.join("soft")).unwrap().trim(), "0");
        assert_eq!(state_at(tmp.path(), "phy1"), Some((false, false)));
        // A second call finds nothing to do.
        assert!(!unblock_phy_at(tmp.path(), "phy1").unwrap());
    }

    #[test]
    fn hard_block_is_a_clear_error_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fake_switch(tmp.path(), "phy0", 0, "1\n", "1\n");
        assert_eq!(state_at(tmp.path(), "phy0"), Some((true, true)));
        let err = unblock_phy_at(tmp.path(), "phy0").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("hard-blocked"), "{text}");
        assert!(text.contains("phy0"), "{text}");
        assert_eq!(fs::read_to_string(dir.join("soft")).unwrap().trim(), "1");
    }

    #[test]
    fn ignores_unrelated_entries_and_handles_several_switches() {
        let tmp = tempfile::tempdir().unwrap();
        fake_switch(tmp.path(), "phy2", 1, "0\n", "0\n");
        let second = fake_switch(tmp.path(), "phy2", 7, "1\n", "0\n");
        fs::create_dir_all(tmp.path().join("phy2/rfkillx")).unwrap();
        fs::write(tmp.path().join("phy2/rfkill_notes"), "x").unwrap();
        assert_eq!(state_at(tmp.path(), "phy2"), Some((true, false)));
        assert!(unblock_phy_at(tmp.path(), "phy2").unwrap());
        assert_eq!(fs::read_to_string(second.join("soft")).unwrap().trim(), "0");
    }

    #[test]
    fn garbage_in_sysfs_is_invalid_data() {
        let tmp = tempfile::tempdir().unwrap();
        fake_switch(tmp.path(), "phy0", 0, "maybe\n", "0\n");
        assert_eq!(state_at(tmp.path(), "phy0"), None);
        let err = unblock_phy_at(tmp.path(), "phy0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
