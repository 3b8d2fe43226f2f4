//! A recording [`Wiphys`] for unit tests of the daemon's logic (not for behaviour: that is
//! proved against real radios in the hwsim VM).
//!
//! ```
//! use wifi_isolate::host::wiphy::{Wiphys, WiphyError, fake::{Call, FakeWiphys, Op}};
//! # tokio_test_block_on(async {
//! let fake = FakeWiphys::new().with_wiphy(FakeWiphys::wiphy(0, "phy0", "wlp6s0"));
//! let phy = fake.resolve("wlp6s0").await.unwrap();
//! assert_eq!(phy.name, "phy0");
//! fake.fail_once(Op::MoveToNetns, || WiphyError::NetnsUnsupported { phy: "phy0".into() });
//! let ns = std::fs::File::open("/proc/self/ns/net").unwrap();
//! use std::os::fd::AsFd;
//! assert!(fake.move_to_netns(0, ns.as_fd()).await.is_err());
//! assert!(matches!(fake.calls()[1], Call::MoveToNetns { phy: 0, .. }));
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{IfaceInfo, Wiphy, WiphyError, Wiphys};

/// One recorded call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// [`Wiphys::resolve`].
    Resolve(String),
    /// [`Wiphys::move_to_netns`] (the descriptor number it was given).
    MoveToNetns {
        /// Wiphy index.
        phy: u32,
        /// The raw namespace descriptor.
        netns_fd: i32,
    },
    /// [`Wiphys::move_back`].
    MoveBack {
        /// Wiphy index.
        phy: u32,
        /// The box namespace path.
        box_netns: PathBuf,
        /// The requested name.
        restore_name: Option<String>,
    },
    /// [`Wiphys::ensure_iface`].
    EnsureIface {
        /// Wiphy index.
        phy: u32,
        /// The requested name.
        name: String,
    },
    /// [`Wiphys::exists`].
    Exists {
        /// Wiphy index.
        phy: u32,
        /// The extra namespace searched.
        in_netns: Option<PathBuf>,
    },
    /// [`Wiphys::locate`].
    Locate {
        /// Wiphy index.
        phy: u32,
        /// The namespace searched.
        netns: PathBuf,
    },
}

/// The operations a failure can be injected into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// [`Wiphys::resolve`].
    Resolve,
    /// [`Wiphys::move_to_netns`].
    MoveToNetns,
    /// [`Wiphys::move_back`].
    MoveBack,
    /// [`Wiphys::ensure_iface`].
    EnsureIface,
    /// [`Wiphys::exists`].
    Exists,
    /// [`Wiphys::locate`].
    Locate,
}

/// Where a fake wiphy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// In the caller's (host) namespace.
    Host,
    /// Moved into a box by [`Wiphys::move_to_netns`].
    Boxed,
    /// Unplugged ([`FakeWiphys::unplug`]).
    Gone,
}

type MakeError = Box<dyn Fn() -> WiphyError + Send + Sync>;

struct Failure {
    make: MakeError,
    once: bool,
}

#[derive(Default)]
struct State {
    wiphys: Vec<(Wiphy, Place)>,
    /// Interface names that exist but are not wireless (`lo` is always one).
    other_netdevs: Vec<String>,
    calls: Vec<Call>,
    failures: HashMap<Op, Failure>,
}

/// A recording, configurable [`Wiphys`]. Clones share state, so a test can keep one and
/// hand another to the code under test.
///
/// Behaviour: `resolve` finds registered wiphys by interface or phy name while they are in
/// the host (`lo` and [`FakeWiphys::with_netdev`] names → `NotWireless`, others →
/// `NoSuchDevice`); `move_to_netns` checks `netns_ok` and moves the phy to
/// [`Place::Boxed`]; `move_back` returns it and renames its first interface to
/// `restore_name` (or, when [`FakeWiphys::delete_ifaces`] emptied it, creates one under that
/// name, as a driver that deletes the interface in the box forces the real one to);
/// `ensure_iface` does the same for a phy in the host ([`FakeWiphys::come_home`]); `locate`
/// lists its interfaces while boxed; `exists` is false once unplugged. Injected failures
/// take precedence.
#[derive(Clone, Default)]
pub struct FakeWiphys {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeWiphys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeWiphys")
            .field("wiphys", &state.wiphys)
            .field("calls", &state.calls)
            .finish_non_exhaustive()
    }
}

impl FakeWiphys {
    /// An empty fake (only `lo` exists, and it is not wireless).
    pub fn new() -> Self {
        Self::default()
    }

    /// A netns-capable wiphy with one interface, handy for [`FakeWiphys::with_wiphy`].
    pub fn wiphy(index: u32, phy: &str, iface: &str) -> Wiphy {
        Wiphy {
            index,
            name: phy.to_owned(),
            ifaces: vec![IfaceInfo {
                index: 100 + index,
                name: iface.to_owned(),
                mac: Some([0x02, 0, 0, 0, 0, index as u8]),
            }],
            netns_ok: true,
            pci_path: None,
            driver: Some("fake".to_owned()),
        }
    }

    /// Register a wiphy, in the host.
    pub fn with_wiphy(self, wiphy: Wiphy) -> Self {
        self.lock().wiphys.push((wiphy, Place::Host));
        self
    }

    /// Register a non-wireless interface name.
    pub fn with_netdev(self, name: &str) -> Self {
        self.lock().other_netdevs.push(name.to_owned());
        self
    }

    /// Make every call of `op` fail with `make()` until [`FakeWiphys::clear_failures`].
    pub fn fail_on(&self, op: Op, make: impl Fn() -> WiphyError + Send + Sync + 'static) -> &Self {
        self.lock().failures.insert(
            op,
            Failure {
                make: Box::new(make),
                once: false,
            },
        );
        self
    }

    /// Make the next call of `op` fail with `make()`.
    pub fn fail_once(
        &self,
        op: Op,
        make: impl Fn() -> WiphyError + Send + Sync + 'static,
    ) -> &Self {
        self.lock().failures.insert(
            op,
            Failure {
                make: Box::new(make),
                once: true,
            },
        );
        self
    }

    /// Remove all injected failures.
    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Simulate unplugging wiphy `phy` (wherever it is).
    pub fn unplug(&self, phy: u32) {
        for (w, place) in &mut self.lock().wiphys {
            if w.index == phy {
                *place = Place::Gone;
            }
        }
    }

    /// Simulate the interfaces of wiphy `phy` being deleted (in the box, by the agent or by a
    /// driver when the box's namespace dies): it keeps no interface.
    pub fn delete_ifaces(&self, phy: u32) {
        if let Some((w, _)) = find(&mut self.lock(), phy) {
            w.ifaces.clear();
        }
    }

    /// Simulate the kernel handing wiphy `phy` home on its own (the box's namespace died),
    /// with its interfaces unless `keep_ifaces` is false.
    pub fn come_home(&self, phy: u32, keep_ifaces: bool) {
        if let Some((w, place)) = find(&mut self.lock(), phy) {
            *place = Place::Host;
            if !keep_ifaces {
                w.ifaces.clear();
            }
        }
    }

    /// The interfaces wiphy `phy` has now (wherever it is).
    pub fn ifaces(&self, phy: u32) -> Vec<IfaceInfo> {
        find(&mut self.lock(), phy)
            .map(|(w, _)| w.ifaces.clone())
            .unwrap_or_default()
    }

    /// Where wiphy `phy` is now (`None` if never registered).
    pub fn place(&self, phy: u32) -> Option<Place> {
        self.lock()
            .wiphys
            .iter()
            .find(|(w, _)| w.index == phy)
            .map(|(_, p)| *p)
    }

    /// The calls made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forget the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Record `call`, then return the injected failure for `op`, if any.
    fn enter(&self, op: Op, call: Call) -> Result<MutexGuard<'_, State>, WiphyError> {
        let mut state = self.lock();
        state.calls.push(call);
        if let Some(failure) = state.failures.get(&op) {
            let err = (failure.make)();
            if failure.once {
                state.failures.remove(&op);
            }
            return Err(err);
        }
        Ok(state)
    }
}

fn find(state: &mut State, phy: u32) -> Option<&mut (Wiphy, Place)> {
    state.wiphys.iter_mut().find(|(w, _)| w.index == phy)
}

/// Rename the first interface of `w` to `want`, or create one so named if it has none.
fn restore(w: &mut Wiphy, want: Option<&str>, mac: Option<[u8; 6]>) -> Result<String, WiphyError> {
    if let (Some(first), Some(mac)) = (w.ifaces.first_mut(), mac) {
        first.mac = Some(mac);
    }
    match (w.ifaces.first_mut(), want) {
        (Some(first), Some(want)) => first.name = want.to_owned(),
        (Some(_), None) => {}
        (None, Some(want)) => w.ifaces.push(IfaceInfo {
            index: 200 + w.index,
            name: want.to_owned(),
            mac: Some([0x02, 0, 0, 0, 0, w.index as u8]),
        }),
        (None, None) => {
            return Err(WiphyError::Netlink(format!("{} has no interface", w.name)));
        }
    }
    Ok(w.ifaces[0].name.clone())
}

impl Wiphys for FakeWiphys {
    async fn resolve(&self, name: &str) -> Result<Wiphy, WiphyError> {
        let state = self.enter(Op::Resolve, Call::Resolve(name.to_owned()))?;
        let hit = state.wiphys.iter().find(|(w, place)| {
            *place == Place::Host && (w.name == name || w.ifaces.iter().any(|i| i.name == name))
        });
        if let Some((w, _)) = hit {
            return Ok(w.clone());
        }
        if name == "lo" || state.other_netdevs.iter().any(|n| n == name) {
            return Err(WiphyError::NotWireless {
                iface: name.to_owned(),
            });
        }
        Err(WiphyError::NoSuchDevice {
            name: name.to_owned(),
        })
    }

    async fn move_to_netns(&self, phy: u32, netns: BorrowedFd<'_>) -> Result<(), WiphyError> {
        let call = Call::MoveToNetns {
            phy,
            netns_fd: netns.as_raw_fd(),
        };
        let mut state = self.enter(Op::MoveToNetns, call)?;
        match find(&mut state, phy) {
            Some((w, place @ Place::Host)) => {
                if !w.netns_ok {
                    return Err(WiphyError::NetnsUnsupported {
                        phy: w.name.clone(),
                    });
                }
                *place = Place::Boxed;
                Ok(())
            }
            _ => Err(WiphyError::PhyGone { phy }),
        }
    }

    async fn move_back(
        &self,
        phy: u32,
        box_netns: &Path,
        _host_netns: BorrowedFd<'_>,
        restore_name: Option<&str>,
        restore_mac: Option<[u8; 6]>,
    ) -> Result<String, WiphyError> {
        let call = Call::MoveBack {
            phy,
            box_netns: box_netns.to_owned(),
            restore_name: restore_name.map(str::to_owned),
        };
        let mut state = self.enter(Op::MoveBack, call)?;
        let Some((w, place)) = find(&mut state, phy) else {
            return Err(WiphyError::PhyGone { phy });
        };
        if *place == Place::Gone {
            return Err(WiphyError::PhyGone { phy });
        }
        *place = Place::Host;
        restore(w, restore_name, restore_mac)
    }

    async fn ensure_iface(
        &self,
        phy: u32,
        name: &str,
        mac: Option<[u8; 6]>,
    ) -> Result<String, WiphyError> {
        let call = Call::EnsureIface {
            phy,
            name: name.to_owned(),
        };
        let mut state = self.enter(Op::EnsureIface, call)?;
        match find(&mut state, phy) {
            Some((w, Place::Host)) => restore(w, Some(name), mac),
            _ => Err(WiphyError::PhyGone { phy }),
        }
    }

    async fn exists(&self, phy: u32, in_netns: Option<&Path>) -> Result<bool, WiphyError> {
        let call = Call::Exists {
            phy,
            in_netns: in_netns.map(Path::to_owned),
        };
        let mut state = self.enter(Op::Exists, call)?;
        Ok(match find(&mut state, phy) {
            Some((_, Place::Host)) => true,
            Some((_, Place::Boxed)) => in_netns.is_some(),
            _ => false,
        })
    }

    async fn locate(&self, phy: u32, netns: &Path) -> Result<Vec<IfaceInfo>, WiphyError> {
        let call = Call::Locate {
            phy,
            netns: netns.to_owned(),
        };
        let mut state = self.enter(Op::Locate, call)?;
        match find(&mut state, phy) {
            Some((w, Place::Boxed)) => Ok(w.ifaces.clone()),
            _ => Err(WiphyError::PhyGone { phy }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::wiphy::current_netns;
    use std::os::fd::AsFd;

    #[tokio::test]
    async fn fake_round_trip_records_calls() {
        let fake = FakeWiphys::new()
            .with_wiphy(FakeWiphys::wiphy(0, "phy0", "wlp6s0"))
            .with_netdev("eth0");
        let shared = fake.clone();
        assert_eq!(fake.resolve("wlp6s0").await.unwrap().index, 0);
        assert_eq!(fake.resolve("phy0").await.unwrap().index, 0);
        assert!(matches!(
            fake.resolve("eth0").await,
            Err(WiphyError::NotWireless { .. })
        ));
        assert!(matches!(
            fake.resolve("lo").await,
            Err(WiphyError::NotWireless { .. })
        ));
        assert!(matches!(
            fake.resolve("wlan9").await,
            Err(WiphyError::NoSuchDevice { .. })
        ));

        let ns = current_netns().unwrap();
        let boxns = Path::new("/proc/1/ns/net");
        fake.move_to_netns(0, ns.as_fd()).await.unwrap();
        assert_eq!(shared.place(0), Some(Place::Boxed));
        assert!(matches!(
            fake.resolve("wlp6s0").await,
            Err(WiphyError::NoSuchDevice { .. })
        ));
        assert_eq!(fake.locate(0, boxns).await.unwrap()[0].name, "wlp6s0");
        assert!(fake.exists(0, Some(boxns)).await.unwrap());
        assert!(!fake.exists(0, None).await.unwrap());

        fake.fail_once(Op::MoveBack, || WiphyError::Netlink("boom".into()));
        assert!(
            fake.move_back(0, boxns, ns.as_fd(), Some("wlp6s0"), None)
                .await
                .is_err()
        );
        let name = fake
            .move_back(0, boxns, ns.as_fd(), Some("wlp6s0"), None)
            .await
            .unwrap();
        assert_eq!(name, "wlp6s0");
        assert_eq!(shared.place(0), Some(Place::Host));

        shared.unplug(0);
        assert!(!fake.exists(0, Some(boxns)).await.unwrap());
        assert!(matches!(
            fake.move_to_netns(0, ns.as_fd()).await,
            Err(WiphyError::PhyGone { phy: 0 })
        ));

        let calls = shared.calls();
        assert_eq!(calls[0], Call::Resolve("wlp6s0".into()));
        assert!(calls.iter().any(|c| matches!(
            c,
            Call::MoveBack { phy: 0, restore_name: Some(n), .. } if n == "wlp6s0"
        )));
        assert_eq!(
            calls
                .iter()
                .filter(|c| matches!(c, Call::MoveBack { .. }))
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn fake_phy_whose_interface_vanished_in_the_box_comes_home_with_one() {
        let fake = FakeWiphys::new().with_wiphy(FakeWiphys::wiphy(2, "phy2", "wlan2"));
        let ns = current_netns().unwrap();
        let boxns = Path::new("/proc/1/ns/net");
        // Explicit return: the interface was deleted inside the box.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        fake.delete_ifaces(2);
        assert!(fake.locate(2, boxns).await.unwrap().is_empty());
        let name = fake
            .move_back(2, boxns, ns.as_fd(), Some("wlan2"), None)
            .await
            .unwrap();
        assert_eq!(name, "wlan2");
        assert_eq!(fake.place(2), Some(Place::Host));
        assert_eq!(fake.resolve("wlan2").await.unwrap().index, 2);
        // Without a name to restore there is nothing to create.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        fake.delete_ifaces(2);
        assert!(
            fake.move_back(2, boxns, ns.as_fd(), None, None)
                .await
                .is_err()
        );

        // The kernel handed it home bare (the box's netns died): ensure_iface creates it.
        fake.come_home(2, false);
        assert!(fake.ifaces(2).is_empty());
        assert_eq!(fake.ensure_iface(2, "wlan2", None).await.unwrap(), "wlan2");
        assert_eq!(fake.ifaces(2)[0].name, "wlan2");
        // Home with an interface under another name: renamed.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        fake.come_home(2, true);
        assert_eq!(
            fake.ensure_iface(2, "wlp2s0", None).await.unwrap(),
            "wlp2s0"
        );
        assert_eq!(fake.ifaces(2).len(), 1);
        // Not in the host: PhyGone.
        fake.move_to_netns(2, ns.as_fd()).await.unwrap();
        assert!(matches!(
            fake.ensure_iface(2, "wlan2", None).await,
            Err(WiphyError::PhyGone { phy: 2 })
        ));
        assert!(fake.calls().contains(&Call::EnsureIface {
            phy: 2,
            name: "wlp2s0".into()
        }));
    }

    #[tokio::test]
    async fn fake_refuses_a_driver_without_netns_support() {
        let mut wiphy = FakeWiphys::wiphy(4, "phy4", "wlan4");
        wiphy.netns_ok = false;
        let fake = FakeWiphys::new().with_wiphy(wiphy);
        let ns = current_netns().unwrap();
        assert!(matches!(
            fake.move_to_netns(4, ns.as_fd()).await,
            Err(WiphyError::NetnsUnsupported { .. })
        ));
        fake.fail_on(Op::Resolve, || WiphyError::Netlink("down".into()));
        assert!(fake.resolve("wlan4").await.is_err());
        assert!(fake.resolve("wlan4").await.is_err());
        fake.clear_failures();
        assert!(fake.resolve("wlan4").await.is_ok());
    }
}
