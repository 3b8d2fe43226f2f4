//! Interface, address and route configuration in the agent's own network namespace (rtnetlink).
//!
//! The agent runs inside the box, so every change made here lands in the box's netns only: the host's
//! routes and addresses are out of reach by construction.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use serde::Serialize;

/// A route as shown to MCP clients.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination in CIDR form (`default` for 0.0.0.0/0).
    pub destination: String,
    /// Next hop, if the route has one.
    pub gateway: Option<String>,
    /// Output interface name.
    pub dev: Option<String>,
}

/// An address as shown to MCP clients.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface name.
    pub dev: String,
    /// Address in CIDR form.
    pub cidr: String,
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

    /// Remove every IPv4 address and every route through the interface.
    pub async fn flush(&self, index: u32) -> anyhow::Result<()> {
        for route in self.route_messages().await? {
            if route_oif(&route) == Some(index) {
                // The kernel may already have dropped it together with its address.
                let _ = self.handle.route().del(route).execute().await;
            }
        }
        let _one = self.dump.lock().await;
        let addrs: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await?;
        for addr in addrs {
            if addr.header.family == rtnetlink::packet_route::AddressFamily::Inet {
                let _ = self.handle.address().del(addr).execute().await;
            }
        }
        Ok(())
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

    async fn route_messages(
        &self,
    ) -> anyhow::Result<Vec<rtnetlink::packet_route::route::RouteMessage>> {
        let _one = self.dump.lock().await;
        Ok(self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await?)
    }

    /// The main-table IPv4 routes of this namespace.
    pub async fn routes(&self) -> anyhow::Result<Vec<RouteInfo>> {
        let names = self.links().await?;
        let name_of = |idx: u32| {
            names
                .iter()
                .find(|(i, _, _)| *i == idx)
                .map(|(_, n, _)| n.clone())
        };
        let mut out = Vec::new();
        for r in self.route_messages().await? {
            if r.header.table != 254 {
                continue;
            }
            let mut dst = None;
            let mut gw = None;
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(g.to_string()),
                    _ => {}
                }
            }
            let destination = match dst {
                Some(d) => format!("{d}/{}", r.header.destination_prefix_length),
                None => "default".to_string(),
            };
            out.push(RouteInfo {
                destination,
                gateway: gw,
                dev: route_oif(&r).and_then(name_of),
            });
        }
        Ok(out)
    }

    /// All IPv4 addresses of this namespace.
    pub async fn addresses(&self) -> anyhow::Result<Vec<AddrInfo>> {
        let names = self.links().await?;
        let mut out = Vec::new();
        let _one = self.dump.lock().await;
        let mut addrs = self.handle.address().get().execute();
        while let Some(a) = addrs.try_next().await? {
            if a.header.family != rtnetlink::packet_route::AddressFamily::Inet {
                continue;
            }
            let ip = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = ip {
                let dev = names
                    .iter()
                    .find(|(i, _, _)| *i == a.header.index)
                    .map(|(_, n, _)| n.clone())
                    .unwrap_or_default();
                out.push(AddrInfo {
                    dev,
                    cidr: format!("{ip}/{}", a.header.prefix_len),
                });
            }
        }
        Ok(out)
    }
}

fn route_oif(r: &rtnetlink::packet_route::route::RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
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

    #[test]
    fn masks() {
        assert_eq!(mask_to_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(mask_to_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_to_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_to_prefix("255.0.255.0".parse().unwrap()), None);
    }
}
