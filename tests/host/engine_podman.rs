//! The Podman engine through Podman's Docker-compatible API (`podman system service`), with a
//! private service, storage and `containers.conf` (runc, explicit ulimits). Needs root
//! and `podman runc uidmap`; the image is imported offline by `tests/host/image.sh`.

use std::sync::{Arc, Mutex, Weak};

use wifi_isolate::host::engine::EngineKind;
use wifi_isolate_tests::engine::*;
use wifi_isolate_tests::env::require_root;

static PODMAN: Mutex<Weak<Daemon>> = Mutex::new(Weak::new());

fn podman() -> Arc<Daemon> {
    require_root("the engine tests");
    shared(&PODMAN, podman_with_image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_box_is_locked_down() {
    api::box_is_locked_down(&podman(), EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_wait_sees_kill() {
    api::wait_sees_kill(&podman(), EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_leftover_is_replaced() {
    api::leftover_is_replaced(&podman(), EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_early_death_is_reported() {
    api::early_death_is_reported(&podman(), EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_missing_image() {
    api::missing_image(&podman(), EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_dead_socket_is_unavailable() {
    require_root("the engine tests");
    api::dead_socket_is_unavailable(EngineKind::Podman).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_auto_selects() {
    api::auto_selects(&podman(), EngineKind::Podman).await;
}

/// The hostile-agent probe (tests/src/bin/hostile-probe.rs) as the box's entrypoint, started through
/// our engine code against this host's podman: every attempt refused with an errno, the positive
/// controls ok, and this host checked on its own side (root-only canary unread, a canary process
/// alive, no new link, addresses and routes unchanged, no probe file). No radio here: the wiphy
/// attempts are "skipped: no wiphy" (the podman box is probed on real radios in the full-system
/// story, tests/vm/story/guest.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_hostile_probe_holds() {
    hostile::probe_holds(&podman(), EngineKind::Podman).await;
}
