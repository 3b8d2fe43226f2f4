//! `HWSIM_CMD_DEL_RADIO` over generic netlink: the hwsim way to unplug a radio (the probes
//! inside the VMs).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const HWSIM_CMD_DEL_RADIO: u8 = 5;
const HWSIM_ATTR_RADIO_NAME: u16 = 17;
const NLMSG_ERROR: u16 = 2;

fn nla(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn genl_msg(family: u16, flags: u16, seq: u32, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

fn nl_send(fd: &OwnedFd, msg: &[u8]) -> std::io::Result<()> {
    // SAFETY: sendto(2) with a zeroed sockaddr_nl (the kernel) and a valid buffer.
    let r = unsafe {
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn nl_recv(fd: &OwnedFd) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 16384];
    // SAFETY: recv(2) into a valid buffer.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Messages in a netlink datagram: (type, whole message bytes).
fn nl_messages(buf: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
        if len < 16 || off + len > buf.len() {
            break;
        }
        out.push((kind, buf[off..off + len].to_vec()));
        off += (len + 3) & !3;
    }
    out
}

fn nl_error(msg: &[u8]) -> i32 {
    i32::from_ne_bytes(msg[16..20].try_into().unwrap())
}

/// `HWSIM_CMD_DEL_RADIO` for wiphy `phy`, sent from a thread inside the netns at `ns` (hwsim only
/// deletes radios in the sender's netns).
pub fn hwsim_del_radio(ns: &Path, phy: &str) -> Result<(), String> {
    let ns = ns.to_owned();
    let phy = phy.to_string();
    std::thread::spawn(move || -> Result<(), String> {
        let file = std::fs::File::open(&ns).map_err(|e| format!("{}: {e}", ns.display()))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        // SAFETY: a fresh socket fd, owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if raw < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: raw is a valid fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Resolve the family.
        let mut attrs = Vec::new();
        nla(&mut attrs, CTRL_ATTR_FAMILY_NAME, b"MAC80211_HWSIM\0");
        let req = genl_msg(
            GENL_ID_CTRL,
            libc::NLM_F_REQUEST as u16,
            1,
            CTRL_CMD_GETFAMILY,
            &attrs,
        );
        nl_send(&fd, &req).map_err(|e| format!("send GETFAMILY: {e}"))?;
        let reply = nl_recv(&fd).map_err(|e| format!("recv GETFAMILY: {e}"))?;
        let mut family = None;
        for (kind, m) in nl_messages(&reply) {
            if kind == NLMSG_ERROR {
                return Err(format!("GETFAMILY: errno {}", -nl_error(&m)));
            }
            let mut off = 20;
            while off + 4 <= m.len() {
                let alen = u16::from_ne_bytes(m[off..off + 2].try_into().unwrap()) as usize;
                let akind = u16::from_ne_bytes(m[off + 2..off + 4].try_into().unwrap()) & 0x3fff;
                if alen < 4 || off + alen > m.len() {
                    break;
                }
                if akind == CTRL_ATTR_FAMILY_ID && alen >= 6 {
                    family = Some(u16::from_ne_bytes(m[off + 4..off + 6].try_into().unwrap()));
                }
                off += (alen + 3) & !3;
            }
        }
        let family = family.ok_or("no MAC80211_HWSIM family id in the reply")?;
        let mut attrs = Vec::new();
        let mut name = phy.into_bytes();
        name.push(0);
        nla(&mut attrs, HWSIM_ATTR_RADIO_NAME, &name);
        let req = genl_msg(
            family,
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16,
            2,
            HWSIM_CMD_DEL_RADIO,
            &attrs,
        );
        nl_send(&fd, &req).map_err(|e| format!("send DEL_RADIO: {e}"))?;
        let reply = nl_recv(&fd).map_err(|e| format!("recv DEL_RADIO: {e}"))?;
        for (kind, m) in nl_messages(&reply) {
            if kind == NLMSG_ERROR {
                let e = nl_error(&m);
                return if e == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "DEL_RADIO: {}",
                        std::io::Error::from_raw_os_error(-e)
                    ))
                };
            }
        }
        Err("DEL_RADIO: no ack".into())
    })
    .join()
    .unwrap_or_else(|_| Err("thread panicked".into()))
}
