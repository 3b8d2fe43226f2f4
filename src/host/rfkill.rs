//! rfkill for one wiphy: its switches are read in sysfs (`/sys/class/ieee80211/PHY/rfkillN/{soft,
//! hard,index}`), a soft block is lifted through the rfkill control device `/dev/rfkill` (an
//! `RFKILL_OP_CHANGE` event for the switch's index, what `rfkill unblock N` sends). Not by
//! writing `soft` in sysfs: the unit mounts `/sys` read-only (`ProtectKernelTunables=`) and
//! allows exactly `/dev/rfkill` in its device policy.
//!
//! rfkill is global state: a soft block set in the host also silences the radio in the box, so
//! the daemon unblocks the adapter before it moves it. A hard block (a switch, a BIOS setting) can
//! not be lifted from software; [`unblock_phy`] says so instead of pretending.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel lists wiphys (and their rfkill switches) in sysfs.
pub const IEEE80211_CLASS: &str = "/sys/class/ieee80211";

/// The rfkill control device.
pub const RFKILL_DEV: &str = "/dev/rfkill";

/// `RFKILL_OP_CHANGE` (`linux/rfkill.h`): set the soft block of the switch `idx`.
const RFKILL_OP_CHANGE: u8 = 2;
/// `RFKILL_TYPE_ALL`: match the switch by index alone.
const RFKILL_TYPE_ALL: u8 = 0;

/// The rfkill state of a wiphy: `(soft, hard)`, each `true` when blocked.
///
/// `None` when the wiphy has no rfkill switch or does not exist in this network namespace.
/// With several switches under one wiphy (rare), a block on any of them counts.
pub fn state(phy: &str) -> Option<(bool, bool)> {
    state_at(Path::new(IEEE80211_CLASS), phy)
}

/// Lift the soft block of `phy_name`: for every soft-blocked `rfkillN` under the wiphy, an
/// `RFKILL_OP_CHANGE` event with `soft = 0` to `/dev/rfkill`, then sysfs must say unblocked.
///
/// Returns whether it was soft-blocked before. A wiphy without an rfkill switch is not blocked
/// (`Ok(false)`). A hard block is an error: software cannot clear it.
pub fn unblock_phy(phy_name: &str) -> io::Result<bool> {
    unblock_phy_at(Path::new(IEEE80211_CLASS), Path::new(RFKILL_DEV), phy_name)
}

/// The 8-byte `struct rfkill_event` (v1: idx, type, op, soft, hard) that unblocks switch `idx`.
fn unblock_event(idx: u32) -> [u8; 8] {
    let mut ev = [0u8; 8];
    ev[..4].copy_from_slice(&idx.to_ne_bytes());
    ev[4] = RFKILL_TYPE_ALL;
    ev[5] = RFKILL_OP_CHANGE;
    ev[6] = 0; // soft: unblocked
    ev[7] = 0; // hard: ignored by the kernel for OP_CHANGE
    ev
}

/// One `rfkillN` directory under a wiphy.
#[derive(Debug)]
struct Switch {
    dir: PathBuf,
    /// The switch's index for `/dev/rfkill` (`rfkillN/index`, else the `N` of its name).
    idx: u32,
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
        let idx = match fs::read_to_string(path.join("index")) {
            Ok(text) => text.trim().parse().ok(),
            Err(_) => number.parse().ok(),
        };
        let Some(idx) = idx else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no usable rfkill index", path.display()),
            ));
        };
        found.push(Switch {
            idx,
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

pub(crate) fn unblock_phy_at(root: &Path, dev: &Path, phy: &str) -> io::Result<bool> {
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
    let blocked: Vec<&Switch> = found.iter().filter(|s| s.soft).collect();
    if blocked.is_empty() {
        return Ok(false);
    }
    let ctl = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", dev.display()));
    let mut control = fs::OpenOptions::new().write(true).open(dev).map_err(ctl)?;
    for switch in &blocked {
        io::Write::write_all(&mut control, &unblock_event(switch.idx)).map_err(ctl)?;
    }
    drop(control);
    // The kernel applies the change before write() returns; a short grace for slower emulations.
    for switch in &blocked {
        let soft = switch.dir.join("soft");
        let mut tries = 0;
        while read_flag(&soft)? {
            tries += 1;
            if tries > 20 {
                return Err(io::Error::other(format!(
                    "{}: still soft-blocked after an unblock of rfkill index {} through {}",
                    switch.dir.display(),
                    switch.idx,
                    dev.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel must get: idx (native endian), RFKILL_TYPE_ALL, RFKILL_OP_CHANGE, soft 0, 0.
    fn event(idx: u32) -> [u8; 8] {
        let i = idx.to_ne_bytes();
        [i[0], i[1], i[2], i[3], 0, 2, 0, 0]
    }

    /// No such device: a test that must not touch the control device passes this.
    const NO_DEV: &str = "/nonexistent/rfkill";

    /// A stand-in for the kernel's `/dev/rfkill`: a FIFO whose reader applies each
    /// `RFKILL_OP_CHANGE` event to the fake switch `rfkill<idx>` under `root/phy` (writes its
    /// `soft`), as the kernel does before `write()` returns. Joins with the events it read.
    fn fake_control(root: &Path, phy: &str, dev: &Path) -> std::thread::JoinHandle<Vec<[u8; 8]>> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dev.as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (dir, dev) = (root.join(phy), dev.to_path_buf());
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut fs::File::open(&dev).unwrap(), &mut bytes).unwrap();
            let events: Vec<[u8; 8]> = bytes
                .chunks(8)
                .map(|c| c.try_into().expect("whole events"))
                .collect();
            for ev in &events {
                let idx = u32::from_ne_bytes(ev[..4].try_into().unwrap());
                assert_eq!(ev[5], RFKILL_OP_CHANGE);
                let soft = if ev[6] == 0 { "0\n" } else { "1\n" };
                fs::write(dir.join(format!("rfkill{idx}/soft")), soft).unwrap();
            }
            events
        })
    }

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
        assert!(!unblock_phy_at(tmp.path(), Path::new(NO_DEV), "phy0").unwrap());
    }

    #[test]
    fn missing_phy() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(state_at(tmp.path(), "phy9"), None);
        let err = unblock_phy_at(tmp.path(), Path::new(NO_DEV), "phy9").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("phy9"), "{err}");
    }

    #[test]
    fn rejects_path_like_names() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", "..", ".", "phy0/../x"] {
            assert_eq!(state_at(tmp.path(), bad), None);
            let err = unblock_phy_at(tmp.path(), Path::new(NO_DEV), bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn unblocks_a_soft_block() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fake_switch(tmp.path(), "phy1", 3, "1\n", "0\n");
        assert_eq!(state_at(tmp.path(), "phy1"), Some((true, false)));
        let dev = tmp.path().join("rfkill-dev");
        let kernel = fake_control(tmp.path(), "phy1", &dev);
        assert!(unblock_phy_at(tmp.path(), &dev, "phy1").unwrap());
        // One event, for index 3 (from the name).
        assert_eq!(kernel.join().unwrap(), vec![event(3)]);
        assert_eq!(fs::read_to_string(dir.join("soft")).unwrap().trim(), "0");
        assert_eq!(state_at(tmp.path(), "phy1"), Some((false, false)));
        // A second call finds nothing to do and does not open the device.
        assert!(!unblock_phy_at(tmp.path(), Path::new(NO_DEV), "phy1").unwrap());
    }

    #[test]
    fn the_index_file_names_the_switch() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fake_switch(tmp.path(), "phy0", 0, "1\n", "0\n");
        // The kernel's index is normally rfkillN's N; sysfs's `index` is what counts.
        fs::write(dir.join("index"), "0\n").unwrap();
        let dev = tmp.path().join("rfkill-dev");
        let kernel = fake_control(tmp.path(), "phy0", &dev);
        assert!(unblock_phy_at(tmp.path(), &dev, "phy0").unwrap());
        assert_eq!(kernel.join().unwrap()[0][..4], 0u32.to_ne_bytes());
    }

    #[test]
    fn a_device_that_does_not_unblock_is_an_error_not_a_success() {
        let tmp = tempfile::tempdir().unwrap();
        fake_switch(tmp.path(), "phy4", 12, "1\n", "0\n");
        // A plain file takes the event and changes nothing.
        let dev = tmp.path().join("not-a-device");
        fs::write(&dev, "").unwrap();
        let err = unblock_phy_at(tmp.path(), &dev, "phy4").unwrap_err();
        assert!(err.to_string().contains("still soft-blocked"), "{err}");
        assert_eq!(fs::read(&dev).unwrap(), event(12));
        // No control device at all: the error names it.
        let err = unblock_phy_at(tmp.path(), Path::new(NO_DEV), "phy4").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains(NO_DEV), "{err}");
    }

    #[test]
    fn hard_block_is_a_clear_error_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fake_switch(tmp.path(), "phy0", 0, "1\n", "1\n");
        assert_eq!(state_at(tmp.path(), "phy0"), Some((true, true)));
        let err = unblock_phy_at(tmp.path(), Path::new(NO_DEV), "phy0").unwrap_err();
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
        let dev = tmp.path().join("rfkill-dev");
        let kernel = fake_control(tmp.path(), "phy2", &dev);
        assert!(unblock_phy_at(tmp.path(), &dev, "phy2").unwrap());
        // Only the blocked switch (7) gets an event.
        assert_eq!(kernel.join().unwrap(), vec![event(7)]);
        assert_eq!(fs::read_to_string(second.join("soft")).unwrap().trim(), "0");
    }

    #[test]
    fn garbage_in_sysfs_is_invalid_data() {
        let tmp = tempfile::tempdir().unwrap();
        fake_switch(tmp.path(), "phy0", 0, "maybe\n", "0\n");
        assert_eq!(state_at(tmp.path(), "phy0"), None);
        let err = unblock_phy_at(tmp.path(), Path::new(NO_DEV), "phy0").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
