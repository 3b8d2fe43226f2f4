//! Interface, address and route configuration in the agent's own network namespace (rtnetlink).
//!
//! The agent runs inside the box, so every change made here lands in the box's netns only: the host's
//! routes and addresses are out of reach by construction.
//!
//! IPv6 is on, on purpose: the box's netns holds only `lo` and the WiFi interface, so the kernel's
//! default `accept_ra=1` autoconfigures the WiFi interface alone from the network's router
//! advertisements (SLAAC addresses, an RA default route). Nothing here writes sysctls (`/proc/sys`
//! is read-only in the box). On disconnect [`NetCfg::flush_ipv6`] removes what the network gave —
//! global/autoconf addresses and RA-learned routes — like [`NetCfg::flush`] does for the DHCP
//! lease; the link-local address stays. Routes and addresses are reported for both families.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use serde::Serialize;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// A route as shown to MCP clients.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct RouteInfo {
    /// ipv4 or ipv6.
    pub family: Family,
    /// Destination in CIDR form (`default` for 0.0.0.0/0 and ::/0).
    pub destination: String,
    /// Next hop, if the route has one.
    pub gateway: Option<String>,
    /// Output interface name.
    pub dev: Option<String>,
    /// Who made it: kernel, boot, static, dhcp, ra (learned from a router advertisement), …
    pub protocol: String,
}

/// An address as shown to MCP clients.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct AddrInfo {
    /// ipv4 or ipv6.
    pub family: Family,
    /// Interface name.
    pub dev: String,
    /// Address in CIDR form.
    pub cidr: String,
    /// global, link or host.
    pub scope: String,
}

/// A netlink route connection bound to the current network namespace.
///
/// Dumps (links, routes, addresses) are serialized: the kernel runs one dump at a time per
/// netlink socket and answers a second one with EBUSY, and concurrent MCP calls
/// (`wifi_status` from several clients) share this one connection.
#[derive(Clone)]
pub struct NetCfg {
    handle: Handle,
    dump: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl NetCfg {
    /// Open a route netlink connection in the calling thread's network namespace.
    pub fn open() -> anyhow::Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self {
            handle,
            dump: Default::default(),
        })
    }

    /// Index of the interface called `name`, if it exists.
    pub async fn index(&self, name: &str) -> anyhow::Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The interface's current MAC address (`IFLA_ADDRESS`), if it has a 6-byte one.
    pub async fn mac(&self, index: u32) -> anyhow::Result<Option<[u8; 6]>> {
        let mut links = self.handle.link().get().match_index(index).execute();
        let Some(msg) = links.try_next().await? else {
            return Ok(None);
        };
        Ok(msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => None,
        }))
    }

    /// All interface names and whether each is up, indexed by ifindex.
    pub async fn links(&self) -> anyhow::Result<Vec<(u32, String, bool)>> {
        let _one = self.dump.lock().await;
        let mut out = Vec::new();
        let mut links = self.handle.link().get().execute();
        while let Some(msg) = links.try_next().await? {
            let name = msg
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            out.push((
                msg.header.index,
                name,
                msg.header.flags.contains(LinkFlags::Up),
            ));
        }
        Ok(out)
    }

    /// Bring the interface up.
    pub async fn set_up(&self, index: u32) -> anyhow::Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
        Ok(())
    }

    /// Take the interface down.
    pub async fn set_down(&self, index: u32) -> anyhow::Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).down().build())
            .execute()
            .await?;
        Ok(())
    }

    /// Change the interface's MAC address (down, set, up).
    pub async fn set_mac(&self, index: u32, mac: [u8; 6]) -> anyhow::Result<()> {
        let link = self.handle.link();
        link.set(LinkUnspec::new_with_index(index).down().build())
            .execute()
            .await?;
        let set = link
            .set(
                LinkUnspec::new_with_index(index)
                    .address(mac.to_vec())
                    .build(),
            )
            .execute()
            .await;
        link.set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
        Ok(set?)
    }

    /// Remove every IPv4 address and every IPv4 route through the interface (the DHCP lease).
    pub async fn flush(&self, index: u32) -> anyhow::Result<()> {
        for route in self.route_messages(Family::Ipv4).await? {
            if route_oif(&route) == Some(index) {
                // The kernel may already have dropped it together with its address.
                let _ = self.handle.route().del(route).execute().await;
            }
        }
        for addr in self.address_messages(Some(index)).await? {
            if addr.header.family == AddressFamily::Inet {
                let _ = self.handle.address().del(addr).execute().await;
            }
        }
        Ok(())
    }

    /// Remove what the network configured over IPv6 on the interface: routes it learned from
    /// router advertisements (and any other route through it that the kernel did not make for
    /// an address), and its global/autoconf addresses. The link-local address (and its
    /// `fe80::/64` route) stays: it belongs to the interface, not to the network.
    pub async fn flush_ipv6(&self, index: u32) -> anyhow::Result<()> {
        for route in self.route_messages(Family::Ipv6).await? {
            if route_oif(&route) == Some(index) && is_learned_v6(&route) {
                let _ = self.handle.route().del(route).execute().await;
            }
        }
        for addr in self.address_messages(Some(index)).await? {
            if is_network_v6(&addr) {
                let _ = self.handle.address().del(addr).execute().await;
            }
        }
        Ok(())
    }

    async fn address_messages(&self, index: Option<u32>) -> anyhow::Result<Vec<AddressMessage>> {
        let _one = self.dump.lock().await;
        let mut req = self.handle.address().get();
        if let Some(i) = index {
            req = req.set_link_index_filter(i);
        }
        Ok(req.execute().try_collect().await?)
    }

    /// Configure a DHCP lease: address, then the default route via the router.
    pub async fn apply_lease(
        &self,
        index: u32,
        ip: Ipv4Addr,
        prefix: u8,
        router: Option<Ipv4Addr>,
    ) -> anyhow::Result<()> {
        self.flush(index).await?;
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), prefix)
            .execute()
            .await?;
        if let Some(gw) = router {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            self.handle.route().add(route).replace().execute().await?;
        }
        Ok(())
    }

    async fn route_messages(&self, family: Family) -> anyhow::Result<Vec<RouteMessage>> {
        let _one = self.dump.lock().await;
        let req = match family {
            Family::Ipv4 => RouteMessageBuilder::<Ipv4Addr>::new().build(),
            Family::Ipv6 => RouteMessageBuilder::<Ipv6Addr>::new().build(),
        };
        Ok(self.handle.route().get(req).execute().try_collect().await?)
    }

    /// The main-table routes of this namespace, IPv4 then IPv6 (none through `lo`).
    pub async fn routes(&self) -> anyhow::Result<Vec<RouteInfo>> {
        let names = self.links().await?;
        let name_of = |idx: u32| {
            names
                .iter()
                .find(|(i, _, _)| *i == idx)
                .map(|(_, n, _)| n.clone())
        };
        let mut out = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            for r in self.route_messages(family).await? {
                let dev = route_oif(&r).and_then(name_of);
                // `::1 dev lo` sits in IPv6's main table (IPv4 keeps 127/8 in `local`): not a
                // route anywhere.
                if r.header.table != 254 || dev.as_deref() == Some("lo") {
                    continue;
                }
                out.push(route_info(family, &r, dev));
            }
        }
        Ok(out)
    }

    /// All addresses of this namespace, both families.
    pub async fn addresses(&self) -> anyhow::Result<Vec<AddrInfo>> {
        let names = self.links().await?;
        let mut out = Vec::new();
        for a in self.address_messages(None).await? {
            let dev = names
                .iter()
                .find(|(i, _, _)| *i == a.header.index)
                .map(|(_, n, _)| n.clone())
                .unwrap_or_default();
            out.extend(addr_info(&a, dev));
        }
        Ok(out)
    }
}

fn route_oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

/// An IPv6 route the network gave us: everything in the main table but the interface's own
/// `fe80::/64`. (An RA's on-link prefix route is `proto kernel` with an expiry, its default
/// route `proto ra`; neither goes with the link going down, nor with the address.)
fn is_learned_v6(r: &RouteMessage) -> bool {
    let link_local = r.header.destination_prefix_length == 64
        && r.attributes.iter().any(|a| {
            matches!(a, RouteAttribute::Destination(RouteAddress::Inet6(d))
                if d.segments() == [0xfe80, 0, 0, 0, 0, 0, 0, 0])
        });
    r.header.table == 254 && !link_local
}

/// An IPv6 address the network gave us: anything but link-local (and host) scope.
fn is_network_v6(a: &AddressMessage) -> bool {
    a.header.family == AddressFamily::Inet6
        && !matches!(a.header.scope, AddressScope::Link | AddressScope::Host)
}

fn protocol_name(p: RouteProtocol) -> String {
    match p {
        RouteProtocol::Kernel => "kernel".into(),
        RouteProtocol::Boot => "boot".into(),
        RouteProtocol::Static => "static".into(),
        RouteProtocol::Ra => "ra".into(),
        RouteProtocol::Dhcp => "dhcp".into(),
        RouteProtocol::IcmpRedirect => "redirect".into(),
        RouteProtocol::Unspec => "unspec".into(),
        other => format!("{}", u8::from(other)),
    }
}

fn route_info(family: Family, r: &RouteMessage, dev: Option<String>) -> RouteInfo {
    let mut dst = None;
    let mut gw = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(IpAddr::V4(*d)),
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => dst = Some(IpAddr::V6(*d)),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(g.to_string()),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gw = Some(g.to_string()),
            _ => {}
        }
    }
    let destination = match dst {
        Some(d) if r.header.destination_prefix_length > 0 => {
            format!("{d}/{}", r.header.destination_prefix_length)
        }
        _ => "default".to_string(),
    };
    RouteInfo {
        family,
        destination,
        gateway: gw,
        dev,
        protocol: protocol_name(r.header.protocol),
    }
}

fn addr_info(a: &AddressMessage, dev: String) -> Option<AddrInfo> {
    let family = match a.header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    // IPv4: IFA_LOCAL is our address (IFA_ADDRESS is the peer on point-to-point links).
    let ip = a
        .attributes
        .iter()
        .find_map(|x| match x {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        })
        .or_else(|| {
            a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        })?;
    let scope = match a.header.scope {
        AddressScope::Universe => "global".to_string(),
        AddressScope::Link => "link".to_string(),
        AddressScope::Host => "host".to_string(),
        AddressScope::Site => "site".to_string(),
        other => format!("{}", u8::from(other)),
    };
    Some(AddrInfo {
        family,
        dev,
        cidr: format!("{ip}/{}", a.header.prefix_len),
        scope,
    })
}

/// Prefix length of a dotted IPv4 netmask (`255.255.255.0` → 24); `None` if not contiguous.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

#[cfg(test)]
mod tests {

    /// Several MCP clients asking for the status at once share one netlink socket: every dump
    /// must succeed (the kernel answers a second concurrent dump on a socket with EBUSY).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_dumps_on_one_connection_all_succeed() {
        let net = super::NetCfg::open().unwrap();
        let calls = (0..32).map(|i| {
            let net = net.clone();
            tokio::spawn(async move {
                match i % 3 {
                    0 => net.routes().await.map(drop),
                    1 => net.addresses().await.map(drop),
                    _ => net.links().await.map(drop),
                }
            })
        });
        for r in futures::future::join_all(calls).await {
            r.unwrap().expect("a concurrent dump failed");
        }
    }
    use super::*;

    /// Run `f` on a fresh thread in a network namespace of its own (a real kernel, nothing of
    /// the host's), with a current-thread runtime. Needs root.
    fn in_fresh_netns<F, Fut>(f: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET): this test needs root");
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f());
        })
        .join()
        .expect("the netns test panicked");
    }

    /// What a router advertisement leaves on the interface (a SLAAC-like global address, an RA
    /// prefix route and an RA default route) is reported, then flushed; the IPv4 lease and the
    /// link-local address are not touched by the IPv6 flush, and `lo` is not reported.
    #[test]
    fn ipv6_from_the_network_is_reported_and_flushed() {
        in_fresh_netns(|| async {
            use rtnetlink::LinkVeth;
            let net = NetCfg::open().unwrap();
            net.set_up(1).await.unwrap(); // lo
            net.handle
                .link()
                .add(LinkVeth::new("wl0", "wl0-peer").build())
                .execute()
                .await
                .unwrap();
            let idx = net.index("wl0").await.unwrap().unwrap();
            net.set_up(idx).await.unwrap();
            let peer = net.index("wl0-peer").await.unwrap().unwrap();
            net.set_up(peer).await.unwrap();
            let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
            for (a, len) in [("fe80::5", 64), ("fd00:10:1::5", 64)] {
                net.handle
                    .address()
                    .add(idx, IpAddr::V6(v6(a)), len)
                    .execute()
                    .await
                    .unwrap();
            }
            let ra = |b: RouteMessageBuilder<Ipv6Addr>| {
                b.output_interface(idx).protocol(RouteProtocol::Ra).build()
            };
            net.handle
                .route()
                .add(ra(RouteMessageBuilder::<Ipv6Addr>::new()
                    .destination_prefix(v6("fd00:10:2::"), 64)))
                .execute()
                .await
                .unwrap();
            // An RA's on-link prefix route is `proto kernel` (with an expiry).
            net.handle
                .route()
                .add(
                    RouteMessageBuilder::<Ipv6Addr>::new()
                        .destination_prefix(v6("fd00:10:3::"), 64)
                        .output_interface(idx)
                        .protocol(RouteProtocol::Kernel)
                        .build(),
                )
                .execute()
                .await
                .unwrap();
            net.handle
                .route()
                .add(ra(
                    RouteMessageBuilder::<Ipv6Addr>::new().gateway(v6("fe80::1"))
                ))
                .execute()
                .await
                .unwrap();
            net.apply_lease(
                idx,
                "10.0.1.150".parse().unwrap(),
                24,
                "10.0.1.1".parse().ok(),
            )
            .await
            .unwrap();

            let routes = net.routes().await.unwrap();
            let has = |routes: &[RouteInfo], fam, dst: &str, proto: &str| {
                routes.iter().any(|r| {
                    r.family == fam
                        && r.destination == dst
                        && r.protocol == proto
                        && r.dev.as_deref() == Some("wl0")
                })
            };
            assert!(has(&routes, Family::Ipv6, "default", "ra"), "{routes:?}");
            assert!(
                has(&routes, Family::Ipv6, "fd00:10:2::/64", "ra"),
                "{routes:?}"
            );
            assert!(
                routes.iter().any(|r| r.family == Family::Ipv4
                    && r.destination == "default"
                    && r.gateway.as_deref() == Some("10.0.1.1")),
                "{routes:?}"
            );
            assert!(
                routes.iter().all(|r| r.dev.as_deref() != Some("lo")),
                "{routes:?}"
            );
            let addrs = net.addresses().await.unwrap();
            let addr = |addrs: &[AddrInfo], cidr: &str| addrs.iter().any(|a| a.cidr == cidr);
            assert!(
                addr(&addrs, "fd00:10:1::5/64") && addr(&addrs, "fe80::5/64"),
                "{addrs:?}"
            );
            assert!(addr(&addrs, "10.0.1.150/24"), "{addrs:?}");
            assert!(addrs.iter().any(|a| a.cidr == "fd00:10:1::5/64"
                && a.scope == "global"
                && a.family == Family::Ipv6));

            net.flush_ipv6(idx).await.unwrap();
            let routes = net.routes().await.unwrap();
            assert!(
                !routes
                    .iter()
                    .any(|r| r.family == Family::Ipv6 && r.protocol == "ra"),
                "RA routes left: {routes:?}"
            );
            assert!(
                !routes.iter().any(|r| r.destination.starts_with("fd00:")),
                "{routes:?}"
            );
            assert!(
                routes.iter().any(|r| r.destination == "fe80::/64"),
                "the link-local route went: {routes:?}"
            );
            let addrs = net.addresses().await.unwrap();
            assert!(
                !addr(&addrs, "fd00:10:1::5/64"),
                "global address left: {addrs:?}"
            );
            assert!(addr(&addrs, "fe80::5/64"), "link-local went: {addrs:?}");
            assert!(
                addr(&addrs, "10.0.1.150/24"),
                "the IPv6 flush took the IPv4 lease"
            );

            // The IPv4 flush leaves IPv6 alone, and takes the lease.
            net.flush(idx).await.unwrap();
            let addrs = net.addresses().await.unwrap();
            assert!(
                !addr(&addrs, "10.0.1.150/24") && addr(&addrs, "fe80::5/64"),
                "{addrs:?}"
            );
            assert_eq!(net.mac(idx).await.unwrap().map(|m| m.len()), Some(6));
            assert_eq!(net.mac(9999).await.ok().flatten(), None);
        });
    }

    #[test]
    fn masks() {
        assert_eq!(mask_to_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(mask_to_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_to_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_to_prefix("255.0.255.0".parse().unwrap()), None);
    }
}
