//! What the network gave the box, per address family: an IPv4 address (the DHCP lease) and a
//! global IPv6 address (SLAAC from the network's router advertisements). The network tools ask
//! this before they send anything, so that `family: "ipv6"` on a WiFi without IPv6 fails at once
//! with `family_unavailable` (no DNS query, no packet), and so that `auto` picks a family the box
//! can actually use.
//!
//! `auto` prefers IPv4: a name with both an A and an AAAA record is reached over IPv4 when the
//! box has an IPv4 address, over IPv6 when it has only IPv6 (an IPv6-only network). The family
//! used is reported in every result (`family`).

use std::net::IpAddr;

use super::target::Family;
use crate::agent::failure::{Code, Failure};
use crate::agent::netcfg::{AddrInfo, Family as AddrFamily};

/// The families the box can send with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stacks {
    /// An IPv4 address on a network interface (not `lo`).
    pub ipv4: bool,
    /// A global (not link-local) IPv6 address on a network interface (not `lo`): the network
    /// sent router advertisements with a prefix.
    pub ipv6: bool,
}

impl Stacks {
    /// From the box's addresses (`NetCfg::addresses`).
    pub fn of(addrs: &[AddrInfo]) -> Self {
        let has = |f: AddrFamily| {
            addrs
                .iter()
                .any(|a| a.family == f && a.dev != "lo" && a.scope == "global")
        };
        Stacks {
            ipv4: has(AddrFamily::Ipv4),
            ipv6: has(AddrFamily::Ipv6),
        }
    }

    fn no_ipv6(what: &str) -> Failure {
        Failure::new(
            Code::FamilyUnavailable,
            format!(
                "{what}, but this network gave the box no IPv6 address (no router advertisement \
                 with a prefix: only link-local IPv6); nothing was sent — use family ipv4 or auto"
            ),
        )
    }

    /// Before anything is sent: can `family` be used at all?
    pub fn require(self, family: Family) -> Result<(), Failure> {
        if family == Family::Ipv6 && !self.ipv6 {
            return Err(Self::no_ipv6("family ipv6 was asked for"));
        }
        Ok(())
    }

    /// Before connecting to `ip`: an IPv6 address (but a link-local one, which needs no router)
    /// needs a global IPv6 address of the box's own.
    pub fn allows(self, ip: IpAddr) -> Result<(), Failure> {
        match ip {
            IpAddr::V6(v6) if !self.ipv6 && !v6.is_unicast_link_local() && !v6.is_loopback() => {
                Err(Self::no_ipv6(&format!("{v6} is an IPv6 address")))
            }
            _ => Ok(()),
        }
    }

    /// The address to use among a name's `addrs` for `family`. `auto`: IPv4 when the box has
    /// IPv4 and the name an A record, else IPv6 when the box has IPv6 and the name an AAAA
    /// record, else whatever the name has (the connect then says why it fails).
    pub fn pick(self, family: Family, addrs: &[IpAddr]) -> Option<IpAddr> {
        match family {
            Family::Auto => {
                let v4 = addrs.iter().find(|a| a.is_ipv4());
                let v6 = addrs.iter().find(|a| a.is_ipv6());
                match (v4, v6) {
                    (Some(a), _) if self.ipv4 => Some(*a),
                    (_, Some(a)) if self.ipv6 => Some(*a),
                    _ => v4.or(v6).copied(),
                }
            }
            f => f.pick(addrs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(family: AddrFamily, dev: &str, cidr: &str, scope: &str) -> AddrInfo {
        AddrInfo {
            family,
            dev: dev.into(),
            cidr: cidr.into(),
            scope: scope.into(),
        }
    }

    #[test]
    fn stacks_from_addresses() {
        let lo = [
            addr(AddrFamily::Ipv4, "lo", "127.0.0.1/8", "host"),
            addr(AddrFamily::Ipv6, "lo", "::1/128", "host"),
        ];
        let ll = addr(AddrFamily::Ipv6, "wlan0", "fe80::1/64", "link");
        let v4 = addr(AddrFamily::Ipv4, "wlan0", "10.0.2.150/24", "global");
        let v6 = addr(AddrFamily::Ipv6, "wlan0", "fd00:77::5/64", "global");
        let none = Stacks {
            ipv4: false,
            ipv6: false,
        };
        assert_eq!(Stacks::of(&lo), none, "lo is no network");
        assert_eq!(
            Stacks::of(&[lo[0].clone(), ll.clone()]),
            none,
            "link-local is no IPv6 network"
        );
        assert_eq!(
            Stacks::of(&[ll.clone(), v4.clone()]),
            Stacks {
                ipv4: true,
                ipv6: false
            }
        );
        assert_eq!(
            Stacks::of(&[ll, v6, v4]),
            Stacks {
                ipv4: true,
                ipv6: true
            }
        );
    }

    #[test]
    fn ipv6_refused_before_sending_on_a_network_without_it() {
        let v4only = Stacks {
            ipv4: true,
            ipv6: false,
        };
        let e = v4only.require(Family::Ipv6).unwrap_err();
        assert_eq!(e.code, Code::FamilyUnavailable);
        assert!(e.text.contains("no IPv6 address") && e.text.contains("nothing was sent"));
        assert!(v4only.require(Family::Auto).is_ok());
        assert!(v4only.require(Family::Ipv4).is_ok());
        let e = v4only.allows("fd00:77::1".parse().unwrap()).unwrap_err();
        assert!(e.text.contains("fd00:77::1 is an IPv6 address"), "{e}");
        assert!(
            v4only.allows("fe80::1".parse().unwrap()).is_ok(),
            "link-local"
        );
        assert!(v4only.allows("::1".parse().unwrap()).is_ok());
        assert!(v4only.allows("10.0.2.1".parse().unwrap()).is_ok());
        let dual = Stacks {
            ipv4: true,
            ipv6: true,
        };
        assert!(dual.require(Family::Ipv6).is_ok());
        assert!(dual.allows("fd00:77::1".parse().unwrap()).is_ok());
    }

    #[test]
    fn auto_prefers_ipv4_and_falls_back_to_what_the_box_has() {
        let v4: IpAddr = "10.0.2.1".parse().unwrap();
        let v6: IpAddr = "fd00:77::1".parse().unwrap();
        let s = |ipv4, ipv6| Stacks { ipv4, ipv6 };
        assert_eq!(s(true, true).pick(Family::Auto, &[v6, v4]), Some(v4));
        assert_eq!(
            s(false, true).pick(Family::Auto, &[v4, v6]),
            Some(v6),
            "v6-only"
        );
        assert_eq!(
            s(true, false).pick(Family::Auto, &[v6]),
            Some(v6),
            "only v6 known"
        );
        assert_eq!(s(false, false).pick(Family::Auto, &[v6, v4]), Some(v4));
        assert_eq!(s(true, true).pick(Family::Ipv6, &[v4, v6]), Some(v6));
        assert_eq!(s(true, true).pick(Family::Ipv4, &[v6]), None);
        assert_eq!(s(true, true).pick(Family::Auto, &[]), None);
    }
}
