//! hwsim VM suite for `wifi-isolate-agent`: real kernel radios (mac80211_hwsim under QEMU), real
//! hostapd access points (open, WPA2, WPA3-SAE, hidden, a second WPA2 on another channel, EAP),
//! real wpa_supplicant and udhcpc, driven by a real MCP client (rmcp) over the Unix socket and
//! over stdio — the Unix-socket half inside the real daemon's hardened netns box (`wifi-isolate run`,
//! bubblewrap). Needs root and QEMU (installed by tests/deps.sh); fails, never skips, without them.

mod common;

#[test]
fn agent_on_real_radios() {
    common::hwsim::run(
        "agent",
        "open,wpa2,sae,hidden,wpa2b,eap",
        1,
        "tests/vm/agent-guest.sh",
        &[
            common::bin("wifi-isolate"),
            common::bin("wifi-isolate-agent"),
            common::example("hwsim-agent-client"),
        ],
    );
}
