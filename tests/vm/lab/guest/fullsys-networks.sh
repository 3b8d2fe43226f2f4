# fullsys-networks.sh — saved networks end to end on the full system (issue 14): sourced by a
# full-system guest script after fullsys-lib.sh (bash, root, the lab env, the .deb installed,
# podman). Functions only; nothing runs when it is sourced.
#
#   networks_story IFACE   IFACE enabled and active in a podman box, the lab's wpa2 and sae APs up:
#     `network add` with the passphrase on stdin (root 0600, `show`/`list` print no secret),
#     `[security] inline_secrets = false` applied by a restart, wifi_saved_networks (no secret),
#     wifi_connect {network} → a DHCP lease + ping, a profile added while the box runs reaches
#     it at once (0600 in the box dir) and connects (SAE), an inline password and a numeric one
#     refused, `network remove` takes a profile out of the running box; then the passphrases are
#     absent from the journal, `podman logs`, the box's debug logs, every tool result and the
#     box dir. Leaves IFACE active (inline secrets allowed again), no profile left.
#
# Call it from the story guest while S1 is active in its podman box (after the MCP story), with
# this file in the suite's share (tests/vm/story/lab.toml):
#   . /share/fullsys-networks.sh && networks_story "$S1"

NET_OUT=/tmp/networks-results   # every tool result of this phase, searched for secrets at the end

# net_call IFACE TOOL [JSON]: one MCP call through the daemon's socket; the result is kept.
net_call() {
  local args=${3:-'{}'}
  "$PROBE" call "/run/wifi-isolate/$1.sock" "$2" "$args" 2>&1 | tee -a "$NET_OUT"
  return "${PIPESTATUS[0]}"
}
# net_call_fails IFACE TOOL JSON TEXT: the call is a tool error whose text contains TEXT.
net_call_fails() {
  local out
  out=$("$PROBE" call "/run/wifi-isolate/$1.sock" "$2" "$3" 2>&1) && { echo "succeeded: $out"; return 1; }
  echo "$out" >>"$NET_OUT"
  grep -qF -- "$4" <<<"$out" || { echo "no '$4' in: $out"; return 1; }
}
no_secret_in() { ! grep -rqsF -- "$1" "${@:2}"; }

networks_story() {
  local S=$1 box dropin t0 out
  box=/run/wifi-isolate/box/$S
  export PROBE NET_OUT
  dropin=/etc/wifi-isolate/config.d/50-networks-test.toml
  : >"$NET_OUT"

  # ---- the CLI: secrets from stdin only, root 0600, never printed ---------------------------
  check "networks: add lab-wpa2 (passphrase on stdin)" \
    bash -c 'printf "%s\n" "$AP_WPA2_PSK" | wifi-isolate network add lab-wpa2 --ssid "$AP_WPA2_SSID" --security wpa2-psk --secret-stdin'
  check "networks: the profile is root 0600 in a root 0700 dir" \
    bash -c '[ "$(stat -c %u:%a /etc/wifi-isolate/networks/lab-wpa2.toml)" = 0:600 ] && [ "$(stat -c %u:%a /etc/wifi-isolate/networks)" = 0:700 ]'
  { wifi-isolate network show lab-wpa2; wifi-isolate network list; } >/tmp/networks-cli.txt 2>&1
  sed 's/^/  | /' /tmp/networks-cli.txt
  check "networks: show says 'psk: set'" grep -qx 'psk: set' /tmp/networks-cli.txt
  check "networks: show and list print no passphrase" no_secret_in "$AP_WPA2_PSK" /tmp/networks-cli.txt
  check "networks: without a terminal or --secret-stdin, add refuses and writes nothing" \
    bash -c '! wifi-isolate network add nope --ssid x --security wpa2-psk </dev/null && [ ! -e /etc/wifi-isolate/networks/nope.toml ]'

  # ---- inline secrets off; the box gets its copy at start --------------------------------------
  mkdir -p /etc/wifi-isolate/config.d
  printf '[security]\ninline_secrets = false\n' >"$dropin"
  t0=$(ms)
  check "networks: restart $S with inline_secrets = false" systemctl restart "$(unit "$S")"
  check "networks: $S active again" wait_for 90 active_isolated "$S"
  echo "NETWORKS: restarted in $(($(ms) - t0)) ms"
  check "networks: the box's copy is 0600 root (podman: the box's root is root)" \
    test "$(stat -c %u:%a "$box/networks/lab-wpa2.toml")" = 0:600
  check "networks: the copy's dir is root's 0755 (the unit's UMask=0077 notwithstanding)" \
    test "$(stat -c %u:%a "$box/networks")" = 0:755
  check "networks: wifi_saved_networks lists lab-wpa2" \
    bash -c 'net_call "$0" wifi_saved_networks | grep -q "\"lab-wpa2\""' "$S"

  # ---- connect by name: a lease, traffic ------------------------------------------------------
  t0=$(ms)
  check "networks: wifi_connect {network: lab-wpa2} → a lease" \
    bash -c 'net_call "$0" wifi_connect "{\"network\":\"lab-wpa2\",\"timeout_secs\":60}" | grep -q "\"ip\""' "$S"
  echo "NETWORKS: connected by name in $(($(ms) - t0)) ms"
  check "networks: ping the WPA2 AP" net_call "$S" network_ping "{\"host\":\"$AP_WPA2_IP\",\"count\":1}"
  trace "wifi_connect {network: lab-wpa2}" "$S"
  check "networks: host routes/addresses unchanged" same_host

  # ---- a profile added while the box runs ----------------------------------------------------
  out=$(printf '%s\n' "$AP_SAE_PSK" | wifi-isolate network add lab-sae --ssid "$AP_SAE_SSID" --security wpa3-sae --secret-stdin 2>&1)
  sed 's/^/  | /' <<<"$out"
  check "networks: add lab-sae refreshed the running box" grep -q "running boxes updated: .*$S" <<<"$out"
  check "networks: lab-sae in the box at once, 0600 root" test "$(stat -c %u:%a "$box/networks/lab-sae.toml")" = 0:600
  check "networks: wifi_connect {network: lab-sae} (WPA3-SAE) → a lease" \
    bash -c 'net_call "$0" wifi_connect "{\"network\":\"lab-sae\",\"timeout_secs\":60}" | grep -q "\"ip\""' "$S"

  # ---- refusals -------------------------------------------------------------------------------
  check "networks: an inline password is refused (inline_secrets = false)" \
    net_call_fails "$S" wifi_connect "{\"ssid\":\"$AP_WPA2_SSID\",\"password\":\"inline-refused-pw\"}" "wifi-isolate network add"
  check "networks: a numeric password is refused without its digits" \
    net_call_fails "$S" wifi_connect "{\"ssid\":\"$AP_WPA2_SSID\",\"password\":87654321}" "must be a JSON string"
  check "networks: an unknown name says how to add it" \
    net_call_fails "$S" wifi_connect '{"network":"nope"}' "wifi-isolate network add nope"
  check "networks: network and ssid together are refused" \
    net_call_fails "$S" wifi_connect "{\"network\":\"lab-wpa2\",\"ssid\":\"x\"}" "give network alone"
  check "networks: network remove lab-sae takes it out of the running box" \
    bash -c 'wifi-isolate network remove lab-sae && [ ! -e "$0/networks/lab-sae.toml" ]' "$box"
  check "networks: wifi_saved_networks no longer lists lab-sae" \
    bash -c '! net_call "$0" wifi_saved_networks | grep -q "\"lab-sae\""' "$S"

  # ---- the secrets, nowhere but the profile and the box's copy ---------------------------------
  net_call "$S" wifi_debug_logs '{"lines":500}' >/dev/null
  net_call "$S" wifi_disconnect >/dev/null
  journalctl -b --no-pager -o verbose >/tmp/networks-journal.txt
  podman logs "wifi-isolate-$S" >/tmp/networks-podman.txt 2>&1
  local role secret
  for role in "WPA2 passphrase:$AP_WPA2_PSK" "SAE password:$AP_SAE_PSK" \
    "refused inline password:inline-refused-pw" "numeric password:87654321"; do
    secret=${role#*:} role=${role%%:*}
    check "networks: the $role is not in the journal" no_secret_in "$secret" /tmp/networks-journal.txt
    check "networks: the $role is not in podman logs" no_secret_in "$secret" /tmp/networks-podman.txt
    check "networks: the $role is in no tool result (debug logs included)" no_secret_in "$secret" "$NET_OUT"
  done
  for role in "WPA2 passphrase:$AP_WPA2_PSK" "SAE password:$AP_SAE_PSK"; do
    secret=${role#*:} role=${role%%:*}
    check "networks: the $role is in the box dir only as the saved copy" \
      bash -c '! grep -rlsF -- "$0" "$1" | grep -v "^$1/networks/"' "$secret" "$box"
    check "networks: the $role is not in container storage" \
      no_secret_in "$secret" /var/lib/containers/storage/overlay-containers
  done

  # ---- back as it was: inline secrets allowed, no profile --------------------------------------
  check "networks: network remove lab-wpa2" wifi-isolate network remove lab-wpa2
  rm -f "$dropin"
  check "networks: restart $S with the default settings" systemctl restart "$(unit "$S")"
  check "networks: $S active again, no saved network in the box" \
    bash -c 'wait_for 90 active_isolated "$0" && [ -z "$(ls -A "$1/networks")" ]' "$S" "$box"
}
export -f net_call net_call_fails no_secret_in wait_for active_isolated prop unit in_host phy_in_box box_pid ms
