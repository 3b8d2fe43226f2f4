//! The Docker engine against a real `dockerd` started by the test: its own data-root and
//! exec-root, no iptables, no bridge. Needs root and `docker.io` (dockerd, containerd,
//! runc); the image is imported offline by `tests/host/image.sh`.

use std::sync::{Arc, Mutex, Weak};

use wifi_isolate::host::engine::EngineKind;
use wifi_isolate_tests::engine::*;
use wifi_isolate_tests::env::require_root;

static DOCKER: Mutex<Weak<Daemon>> = Mutex::new(Weak::new());

fn docker() -> Arc<Daemon> {
    require_root("the engine tests");
    shared(&DOCKER, docker_with_image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_box_is_locked_down() {
    api::box_is_locked_down(&docker(), EngineKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_wait_sees_kill() {
    api::wait_sees_kill(&docker(), EngineKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_leftover_is_replaced() {
    api::leftover_is_replaced(&docker(), EngineKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_early_death_is_reported() {
    api::early_death_is_reported(&docker(), EngineKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_missing_image() {
    api::missing_image(&docker(), EngineKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_dead_socket_is_unavailable() {
    require_root("the engine tests");
    api::dead_socket_is_unavailable(EngineKind::Docker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_auto_selects() {
    api::auto_selects(&docker(), EngineKind::Docker).await;
}

/// The hostile-agent probe (tests/src/bin/hostile-probe.rs) as the box's entrypoint, started through
/// our engine code against this host's docker: every attempt refused with an errno, the positive
/// controls ok, and this host checked on its own side (root-only canary unread, a canary process
/// alive, no new link, addresses and routes unchanged, no probe file). No radio here: the wiphy
/// attempts are "skipped: no wiphy" (the podman box is probed on real radios in the full-system
/// story, tests/vm/story/guest.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hostile_probe_holds() {
    hostile::probe_holds(&docker(), EngineKind::Docker).await;
}
