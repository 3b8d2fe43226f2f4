//! `host::nm` against a real `dbus-daemon` (a private bus per test) and a stand-in
//! NetworkManager served with zbus: the D-Bus names, signatures, errors and the fallback from
//! `Device.SetManaged` to the `Managed` property are exercised for real; only NM itself is
//! replaced. Needs `dbus-daemon` (Debian: `apt-get install dbus`); fails loudly without it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use wifi_isolate::host::nm::{NetworkManager, NmDbus, NmError};
use zbus::{OwnedObjectPath, interface};

const DEVICE_PATH: &str = "/org/freedesktop/NetworkManager/Devices/7";
const IFACE: &str = "wlp6s0";

/// A private `dbus-daemon`, killed on drop.
struct Bus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = format!("unix:path={}", dir.path().join("bus").display());
        // Its complaints (e.g. about the fd limit) go to a file, shown only if it fails to start.
        let log_path = dir.path().join("dbus-daemon.log");
        let log = std::fs::File::create(&log_path).expect("dbus-daemon log");
        let mut child = match Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address={listen}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("dbus-daemon not found: this test needs it (apt-get install dbus)")
            }
            Err(e) => panic!("cannot start dbus-daemon: {e}"),
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the bus address");
        let address = line.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address: {line:?}; its log: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        Bus {
            child,
            address,
            dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the stand-in device was asked to do, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, entry: String) {
        self.0.lock().unwrap().push(entry);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[derive(zbus::DBusError, Debug)]
#[zbus(prefix = "org.freedesktop.NetworkManager")]
enum StandInError {
    #[zbus(error)]
    ZBus(zbus::Error),
    UnknownDevice(String),
}

struct StandInManager;

#[interface(name = "org.freedesktop.NetworkManager")]
impl StandInManager {
    fn get_device_by_ip_iface(&self, iface: &str) -> Result<OwnedObjectPath, StandInError> {
        if iface == IFACE {
            Ok(OwnedObjectPath::try_from(DEVICE_PATH).unwrap())
        } else {
            Err(StandInError::UnknownDevice(
                "No device found for the requested iface.".into(),
            ))
        }
    }

    #[zbus(property)]
    fn version(&self) -> String {
        "1.54.4".into()
    }
}

/// A device of a NetworkManager that has `SetManaged(b, u)` (≥ 1.54.4).
struct NewDevice {
    managed: bool,
    log: Log,
}

#[interface(name = "org.freedesktop.NetworkManager.Device")]
impl NewDevice {
    #[zbus(property)]
    fn managed(&self) -> bool {
        self.managed
    }

    #[zbus(property)]
    fn set_managed(&mut self, managed: bool) {
        self.log.push(format!("property {managed}"));
        self.managed = managed;
    }

    #[zbus(name = "SetManaged")]
    fn set_managed_method(&mut self, managed: bool, flags: u32) {
        self.log.push(format!("method {managed} flags={flags}"));
        self.managed = managed;
    }
}

/// A device of an older NetworkManager: only the `Managed` property.
struct OldDevice {
    managed: bool,
    log: Log,
}

#[interface(name = "org.freedesktop.NetworkManager.Device")]
impl OldDevice {
    #[zbus(property)]
    fn managed(&self) -> bool {
        self.managed
    }

    #[zbus(property)]
    fn set_managed(&mut self, managed: bool) {
        self.log.push(format!("property {managed}"));
        self.managed = managed;
    }
}

/// Serve a stand-in NetworkManager with `device` at [`DEVICE_PATH`] on `bus`.
async fn serve<D: zbus::object_server::Interface>(bus: &Bus, device: D) -> zbus::Connection {
    zbus::connection::Builder::address(bus.address.as_str())
        .name("org.freedesktop.NetworkManager")
        .serve_at("/org/freedesktop/NetworkManager", StandInManager)
        .serve_at(DEVICE_PATH, device)
        .build()
        .await
        .expect("serve the stand-in NetworkManager")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_unmanages_and_restores_with_set_managed() {
    let bus = Bus::start();
    let log = Log::default();
    let _nm = serve(
        &bus,
        NewDevice {
            managed: true,
            log: log.clone(),
        },
    )
    .await;
    let client = NmDbus::at_address(&bus.address).await.unwrap();

    assert_eq!(client.version().await.unwrap(), "1.54.4");
    let before = client.managed(IFACE).await.unwrap();
    assert!(before);

    client.set_managed(IFACE, false).await.unwrap();
    assert!(!client.managed(IFACE).await.unwrap(), "read back false");
    client.set_managed(IFACE, before).await.unwrap();
    assert!(client.managed(IFACE).await.unwrap(), "restored");

    // Runtime flag (0x1), and never the property when the method exists.
    assert_eq!(
        log.take(),
        ["method false flags=1", "method true flags=1"],
        "SetManaged(b, RUNTIME) used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_the_managed_property_on_older_networkmanager() {
    let bus = Bus::start();
    let log = Log::default();
    let _nm = serve(
        &bus,
        OldDevice {
            managed: true,
            log: log.clone(),
        },
    )
    .await;
    let client = NmDbus::at_address(&bus.address).await.unwrap();

    client.set_managed(IFACE, false).await.unwrap();
    assert!(!client.managed(IFACE).await.unwrap());
    client.set_managed(IFACE, true).await.unwrap();
    assert!(client.managed(IFACE).await.unwrap());
    assert_eq!(log.take(), ["property false", "property true"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_interface_is_no_device() {
    let bus = Bus::start();
    let _nm = serve(
        &bus,
        NewDevice {
            managed: true,
            log: Log::default(),
        },
    )
    .await;
    let client = NmDbus::at_address(&bus.address).await.unwrap();
    match client.managed("eth9").await {
        Err(NmError::NoDevice { iface }) => assert_eq!(iface, "eth9"),
        other => panic!("expected NoDevice, got {other:?}"),
    }
    assert!(matches!(
        client.set_managed("eth9", false).await,
        Err(NmError::NoDevice { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_daemon_at_the_address_is_not_running() {
    let bus = Bus::start();
    let nowhere = format!("unix:path={}", bus.dir.path().join("nobody-here").display());
    match NmDbus::at_address(&nowhere).await {
        Err(NmError::NotRunning) => {}
        other => panic!("expected NotRunning, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_without_networkmanager_is_not_running() {
    let bus = Bus::start();
    let client = NmDbus::at_address(&bus.address).await.unwrap();
    assert!(matches!(client.version().await, Err(NmError::NotRunning)));
    assert!(matches!(
        client.managed(IFACE).await,
        Err(NmError::NotRunning)
    ));
    assert!(matches!(
        client.set_managed(IFACE, false).await,
        Err(NmError::NotRunning)
    ));
}
