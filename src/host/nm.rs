//! NetworkManager over D-Bus (zbus): read and set whether NM manages an interface, at runtime
//! only.
//!
//! The daemon unmanages the adapter before moving it and restores the earlier state on release.
//! It never makes a persistent change: `Device.SetManaged(managed, RUNTIME)` where NM has it
//! (≥ 1.54.4), otherwise a write of the `Managed` property, which NM documents as not persistent.
//! A runtime unmanage is forgotten when the device comes back as a new D-Bus object after the
//! round trip; the udev `ENV{NM_UNMANAGED}="1"` guard covers that window.
//!
//! No NetworkManager on the bus is [`NmError::NotRunning`]: the daemon logs it and carries on.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::debug;
use zbus::{Connection, OwnedObjectPath};

/// The well-known bus name of NetworkManager.
pub const NM_BUS_NAME: &str = "org.freedesktop.NetworkManager";
/// NetworkManager's main object.
pub const NM_PATH: &str = "/org/freedesktop/NetworkManager";
/// `NM_DEVICE_MANAGED_FLAGS_RUNTIME`: the `flags` argument of `Device.SetManaged` for a change
/// that lasts until NM restarts or the device goes away, never written to disk.
pub const SET_MANAGED_RUNTIME: u32 = 0x1;

/// Errors talking to NetworkManager.
#[derive(Debug, thiserror::Error)]
pub enum NmError {
    /// No NetworkManager answers (no bus, or nobody owns `org.freedesktop.NetworkManager`).
    #[error(
        "NetworkManager is not running (nothing owns org.freedesktop.NetworkManager on the bus)"
    )]
    NotRunning,
    /// NetworkManager does not know this interface.
    #[error("NetworkManager has no device for interface {iface}")]
    NoDevice {
        /// The interface name.
        iface: String,
    },
    /// Any other D-Bus failure (access denied, unexpected reply…).
    #[error("NetworkManager over D-Bus: {0}")]
    DBus(String),
}

/// The NetworkManager capability the daemon needs.
pub trait NetworkManager: Send + Sync {
    /// Whether NM manages `iface` now.
    fn managed(&self, iface: &str) -> impl Future<Output = Result<bool, NmError>> + Send;

    /// Make NM manage (or let go of) `iface`, at runtime only.
    fn set_managed(
        &self,
        iface: &str,
        managed: bool,
    ) -> impl Future<Output = Result<(), NmError>> + Send;

    /// NetworkManager's version string (`1.42.4`); also a cheap "is it there" probe.
    fn version(&self) -> impl Future<Output = Result<String, NmError>> + Send;
}

mod dbus {
    //! The two hand-written proxies (only what we use).

    #[zbus::proxy(
        interface = "org.freedesktop.NetworkManager",
        default_service = "org.freedesktop.NetworkManager",
        default_path = "/org/freedesktop/NetworkManager"
    )]
    pub(super) trait Manager {
        /// `GetDeviceByIpIface(s iface) -> o device`.
        fn get_device_by_ip_iface(&self, iface: &str) -> zbus::Result<zbus::OwnedObjectPath>;

        /// `Version` (s).
        #[zbus(property(emits_changed_signal = "false"))]
        fn version(&self) -> zbus::Result<String>;
    }

    #[zbus::proxy(
        interface = "org.freedesktop.NetworkManager.Device",
        default_service = "org.freedesktop.NetworkManager"
    )]
    pub(super) trait Device {
        /// `Managed` (b, read-write; writes are not persistent).
        #[zbus(property(emits_changed_signal = "false"))]
        fn managed(&self) -> zbus::Result<bool>;

        /// Write `Managed`.
        #[zbus(property(emits_changed_signal = "false"))]
        fn set_managed(&self, managed: bool) -> zbus::Result<()>;

        /// `SetManaged(b managed, u flags)` (NetworkManager ≥ 1.54.4).
        #[zbus(name = "SetManaged")]
        fn set_managed_with_flags(&self, managed: bool, flags: u32) -> zbus::Result<()>;
    }
}

/// Whether this NM has `Device.SetManaged`: not known yet, yes, no.
const METHOD_UNKNOWN: u8 = 0;
const METHOD_YES: u8 = 1;
const METHOD_NO: u8 = 2;

/// The real [`NetworkManager`], over a D-Bus connection.
#[derive(Debug, Clone)]
pub struct NmDbus {
    conn: Connection,
    set_managed_method: Arc<AtomicU8>,
}

impl NmDbus {
    /// Connect to the system bus. No system bus is [`NmError::NotRunning`]; a bus without NM
    /// connects fine and each call then answers [`NmError::NotRunning`].
    pub async fn system() -> Result<Self, NmError> {
        let conn = Connection::system().await.map_err(connect_error)?;
        Ok(Self::from_connection(conn))
    }

    /// Connect to the bus at `address` (`unix:path=/tmp/x/bus`), e.g. a private test bus.
    pub async fn at_address(address: &str) -> Result<Self, NmError> {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .map_err(connect_error)?;
        Ok(Self::from_connection(conn))
    }

    /// Use an existing bus connection.
    pub fn from_connection(conn: Connection) -> Self {
        NmDbus {
            conn,
            set_managed_method: Arc::new(AtomicU8::new(METHOD_UNKNOWN)),
        }
    }

    async fn manager(&self) -> Result<dbus::ManagerProxy<'static>, NmError> {
        dbus::ManagerProxy::builder(&self.conn)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(call_error)
    }

    async fn device(&self, iface: &str) -> Result<dbus::DeviceProxy<'static>, NmError> {
        let path: OwnedObjectPath = self
            .manager()
            .await?
            .get_device_by_ip_iface(iface)
            .await
            .map_err(|e| device_error(e, iface))?;
        dbus::DeviceProxy::builder(&self.conn)
            .path(path)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(call_error)
    }
}

impl NetworkManager for NmDbus {
    async fn managed(&self, iface: &str) -> Result<bool, NmError> {
        let device = self.device(iface).await?;
        device.managed().await.map_err(call_error)
    }

    async fn set_managed(&self, iface: &str, managed: bool) -> Result<(), NmError> {
        let device = self.device(iface).await?;
        if self.set_managed_method.load(Ordering::Relaxed) != METHOD_NO {
            match device
                .set_managed_with_flags(managed, SET_MANAGED_RUNTIME)
                .await
            {
                Ok(()) => {
                    self.set_managed_method.store(METHOD_YES, Ordering::Relaxed);
                    debug!(iface, managed, "NetworkManager: Device.SetManaged(RUNTIME)");
                    return Ok(());
                }
                Err(e) if lacks_method(&e) => {
                    debug!(iface, cause = %e, "NetworkManager has no usable Device.SetManaged; \
                        writing the Managed property instead");
                    self.set_managed_method.store(METHOD_NO, Ordering::Relaxed);
                }
                Err(e) => return Err(call_error(e)),
            }
        }
        device.set_managed(managed).await.map_err(call_error)?;
        debug!(iface, managed, "NetworkManager: Managed property written");
        Ok(())
    }

    async fn version(&self) -> Result<String, NmError> {
        self.manager().await?.version().await.map_err(call_error)
    }
}

/// The D-Bus error name of a method error reply, if it is one.
fn error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(fdo) => {
            use zbus::DBusError;
            Some(fdo.name().to_string())
        }
        _ => None,
    }
}

/// Whether the reply says `SetManaged(b, u)` is not there (older NM, or another signature).
fn lacks_method(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.UnknownMethod"
                | "org.freedesktop.DBus.Error.InvalidArgs"
                | "org.freedesktop.DBus.Error.InvalidSignature"
                | "org.freedesktop.DBus.Error.UnknownInterface"
        )
    )
}

fn not_running(e: &zbus::Error) -> bool {
    matches!(
        error_name(e).as_deref(),
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.NoReply"
                | "org.freedesktop.DBus.Error.Disconnected"
        )
    )
}

fn connect_error(e: zbus::Error) -> NmError {
    match e {
        zbus::Error::Connection(..) | zbus::Error::InputOutput(_) | zbus::Error::Handshake(_) => {
            debug!(cause = %e, "no D-Bus to reach NetworkManager on");
            NmError::NotRunning
        }
        e => NmError::DBus(e.to_string()),
    }
}

fn call_error(e: zbus::Error) -> NmError {
    if not_running(&e) {
        debug!(cause = %e, "NetworkManager is not on the bus");
        return NmError::NotRunning;
    }
    match e {
        zbus::Error::InputOutput(_) | zbus::Error::Connection(..) => NmError::NotRunning,
        e => NmError::DBus(e.to_string()),
    }
}

fn device_error(e: zbus::Error, iface: &str) -> NmError {
    if error_name(&e).as_deref() == Some("org.freedesktop.NetworkManager.UnknownDevice") {
        return NmError::NoDevice {
            iface: iface.to_owned(),
        };
    }
    call_error(e)
}

#[cfg(any(test, feature = "fakes"))]
pub mod fake {
    //! A recording [`NetworkManager`] for unit tests of the daemon's logic.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, MutexGuard};

    use super::{NetworkManager, NmError};

    /// One recorded call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum NmCall {
        /// [`NetworkManager::managed`].
        Managed(String),
        /// [`NetworkManager::set_managed`].
        SetManaged(String, bool),
        /// [`NetworkManager::version`].
        Version,
    }

    /// What an injected failure answers.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum NmFailure {
        /// [`NmError::NotRunning`].
        NotRunning,
        /// [`NmError::DBus`] with this text.
        DBus(String),
    }

    #[derive(Debug, Default)]
    struct State {
        running: bool,
        devices: BTreeMap<String, bool>,
        calls: Vec<NmCall>,
        fail_set: Option<NmFailure>,
    }

    /// A recording, configurable [`NetworkManager`]. Clones share state.
    ///
    /// `FakeNm::running()` knows no device until [`FakeNm::with_device`]; `FakeNm::absent()`
    /// answers [`NmError::NotRunning`] to everything (and still records the calls).
    #[derive(Debug, Clone)]
    pub struct FakeNm {
        state: Arc<Mutex<State>>,
    }

    impl FakeNm {
        /// A NetworkManager that is running.
        pub fn running() -> Self {
            FakeNm {
                state: Arc::new(Mutex::new(State {
                    running: true,
                    ..State::default()
                })),
            }
        }

        /// No NetworkManager on the bus.
        pub fn absent() -> Self {
            FakeNm {
                state: Arc::new(Mutex::new(State::default())),
            }
        }

        /// Add a device NM knows, managed or not.
        pub fn with_device(self, iface: &str, managed: bool) -> Self {
            self.lock().devices.insert(iface.to_owned(), managed);
            self
        }

        /// Make every `set_managed` fail until [`FakeNm::clear_failure`].
        pub fn fail_set_managed(&self, failure: NmFailure) {
            self.lock().fail_set = Some(failure);
        }

        /// Remove the injected failure.
        pub fn clear_failure(&self) {
            self.lock().fail_set = None;
        }

        /// The current managed state of `iface` (`None` if unknown to the fake).
        pub fn state_of(&self, iface: &str) -> Option<bool> {
            self.lock().devices.get(iface).copied()
        }

        /// The calls made so far, in order.
        pub fn calls(&self) -> Vec<NmCall> {
            self.lock().calls.clone()
        }

        fn lock(&self) -> MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|p| p.into_inner())
        }

        fn record(&self, call: NmCall) -> Result<MutexGuard<'_, State>, NmError> {
            let mut state = self.lock();
            state.calls.push(call);
            if !state.running {
                return Err(NmError::NotRunning);
            }
            Ok(state)
        }
    }

    impl NetworkManager for FakeNm {
        async fn managed(&self, iface: &str) -> Result<bool, NmError> {
            let state = self.record(NmCall::Managed(iface.to_owned()))?;
            state
                .devices
                .get(iface)
                .copied()
                .ok_or_else(|| NmError::NoDevice {
                    iface: iface.to_owned(),
                })
        }

        async fn set_managed(&self, iface: &str, managed: bool) -> Result<(), NmError> {
            let mut state = self.record(NmCall::SetManaged(iface.to_owned(), managed))?;
            match &state.fail_set {
                Some(NmFailure::NotRunning) => return Err(NmError::NotRunning),
                Some(NmFailure::DBus(text)) => return Err(NmError::DBus(text.clone())),
                None => {}
            }
            match state.devices.get_mut(iface) {
                Some(slot) => {
                    *slot = managed;
                    Ok(())
                }
                None => Err(NmError::NoDevice {
                    iface: iface.to_owned(),
                }),
            }
        }

        async fn version(&self) -> Result<String, NmError> {
            drop(self.record(NmCall::Version)?);
            Ok("1.54.4-fake".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeNm, NmCall, NmFailure};
    use super::*;

    #[tokio::test]
    async fn fake_records_and_restores() {
        let nm = FakeNm::running().with_device("wlp6s0", true);
        let before = nm.managed("wlp6s0").await.unwrap();
        nm.set_managed("wlp6s0", false).await.unwrap();
        assert_eq!(nm.state_of("wlp6s0"), Some(false));
        nm.set_managed("wlp6s0", before).await.unwrap();
        assert_eq!(nm.state_of("wlp6s0"), Some(true));
        assert!(matches!(
            nm.managed("wlan9").await,
            Err(NmError::NoDevice { .. })
        ));
        nm.fail_set_managed(NmFailure::DBus("denied".into()));
        assert!(matches!(
            nm.set_managed("wlp6s0", false).await,
            Err(NmError::DBus(_))
        ));
        assert_eq!(
            nm.calls()[..3],
            [
                NmCall::Managed("wlp6s0".into()),
                NmCall::SetManaged("wlp6s0".into(), false),
                NmCall::SetManaged("wlp6s0".into(), true),
            ]
        );
    }

    #[tokio::test]
    async fn absent_fake_is_not_running() {
        let nm = FakeNm::absent();
        assert!(matches!(nm.version().await, Err(NmError::NotRunning)));
        assert!(matches!(
            nm.set_managed("x", false).await,
            Err(NmError::NotRunning)
        ));
        assert_eq!(nm.calls().len(), 2);
    }
}
