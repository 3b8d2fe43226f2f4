# Guest script for the agent's hwsim suite (run by tests/vm/lab/boot-initramfs.sh, busybox sh, env sourced).
# Drives wifi-isolate-agent with the real MCP client (tests/src/bin/hwsim-agent-client/) twice: first in
# the hardened box the real daemon builds (`wifi-isolate run STA --engine netns`: bubblewrap, its
# own user/pid/mount/net namespaces, seccomp) over the agent's Unix socket — every tool, on real
# radios — then over stdio in a plain `ip netns` box. Finally checks that no secret reached the
# agent's own logs.
set -eu
IP=${HWSIM_IP:-/usr/bin/ip}
STA=${STATIONS%% *}
PHY=${STATION_PHYS%% *}
LOGS=/share/logs
export WIFI_ISOLATE_LOG=debug

# IPv6 behind the WPA2 AP: router advertisements (dnsmasq, RA only) for a ULA prefix, with a
# default route, so the kernel autoconfigures the box's WiFi interface (accept_ra=1 in a fresh
# netns); the agent reports it and flushes it on disconnect.
export AP_WPA2_IPV6=fd00:77::1
$IP -n "$AP_WPA2_NETNS" addr add "$AP_WPA2_IPV6/64" dev "$AP_WPA2_IFACE" nodad
$IP -n "$AP_WPA2_NETNS" -6 route add default via fd00:77::fe dev "$AP_WPA2_IFACE" onlink
$IP netns exec "$AP_WPA2_NETNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
  --port=0 --no-resolv --no-hosts --interface="$AP_WPA2_IFACE" --bind-dynamic --enable-ra \
  --dhcp-range="::,constructor:$AP_WPA2_IFACE,ra-only,64,1h" --ra-param="$AP_WPA2_IFACE,10,600" \
  --pid-file=/run/dnsmasq-ra.pid --log-facility=$LOGS/dnsmasq-ra.log </dev/null >/dev/null 2>&1 &
# The IPv6 checks (tests/src/bin/hwsim-agent-client/v6.rs): the AP's DNS (the lease's server)
# answers AAAA for ap.test too (a hosts file its dnsmasq reads as it appears, see lab-setup.sh);
# fd00:78::1 on the AP's lo, reached through the RA default route, is an address the lab's
# leaf certificate does not name.
printf '%s ap.test\n%s ap.test\n' "$AP_WPA2_IP" "$AP_WPA2_IPV6" > /run/hwsim/ap-test.hosts
mv /run/hwsim/ap-test.hosts /run/hwsim/hosts-wpa2/ap-test
export AP_WPA2_IPV6_NOSAN=fd00:78::1
$IP -n "$AP_WPA2_NETNS" addr add "$AP_WPA2_IPV6_NOSAN/128" dev lo nodad

# The network tools' servers, in the WPA2 AP's netns (tests/src/bin/nettools-lab.rs): HTTPS with
# a throwaway CA → intermediate → leaf chain on :8443, HTTP redirects / cookies / echo on :8080,
# TCP :8081 open, :8082 firewalled (an nft drop rule), :8083 closed, :8084 an endless download
# (the client limits the AP's bandwidth with tc around its throughput check), DNS SERVFAIL on udp :5300 and
# udp :5301 dropped (a DNS timeout); a second dnsmasq on :5353, authoritative for lab.test with a
# record of each type (A AAAA CNAME MX TXT NS SRV PTR). All of them answer over IPv6 too (the
# servers on [::], dnsmasq on fd00:77::1 as well; the nft table is `inet`: both families).
export NETTOOLS_DIR=/run/nettools
$IP netns exec "$AP_WPA2_NETNS" nettools-lab $NETTOOLS_DIR "ap.test,$AP_WPA2_IP,$AP_WPA2_IPV6" \
  > $LOGS/nettools-lab.log 2>&1 &
modprobe nf_tables || echo "modprobe nf_tables failed"
modprobe sch_tbf || echo "modprobe sch_tbf failed"
printf '%s\n' 'table inet nettools {' ' chain input {' '  type filter hook input priority 0; policy accept;' \
  '  tcp dport 8082 drop' '  udp dport 5301 drop' ' }' '}' > /run/nettools.nft
$IP netns exec "$AP_WPA2_NETNS" nft -f /run/nettools.nft > $LOGS/nft.log 2>&1 || echo "nft failed: $(cat $LOGS/nft.log)"
export NETTOOLS_REC_IP=${AP_WPA2_IP%.*}.80
$IP netns exec "$AP_WPA2_NETNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
  --port=5353 --listen-address="$AP_WPA2_IP" --listen-address="$AP_WPA2_IPV6" --bind-interfaces --no-resolv --no-hosts \
  --auth-zone="lab.test,$AP_WPA2_SUBNET,fd00:77::/64" --auth-server="ns.lab.test,$AP_WPA2_IP,$AP_WPA2_IPV6" \
  --auth-soa=1,hostmaster.lab.test --host-record="rec.lab.test,$NETTOOLS_REC_IP,fd00:77::80" \
  --host-record="ns.lab.test,$AP_WPA2_IP" --cname=alias.lab.test,rec.lab.test \
  --mx-host=lab.test,mail.lab.test,10 --txt-record=lab.test,"v=lab1 nettools" \
  --srv-host=_sip._tcp.lab.test,sip.lab.test,5060,0,5 --pid-file=/run/dnsmasq-records.pid \
  --log-queries --log-facility=$LOGS/dnsmasq-records.log </dev/null >/dev/null 2>&1 &
i=0; while [ ! -e $NETTOOLS_DIR/ready ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done
# A two-hop path for the traceroute check: the WPA2 AP's netns routes 10.99.0.0/24 to a netns
# "far" behind a veth pair (10.99.0.1 ↔ 10.99.0.2); the box reaches it via its default route.
$IP netns add far
# (made in the two netns directly: the VM's root netns never holds them)
$IP link add nt-ap netns "$AP_WPA2_NETNS" type veth peer name nt-far netns far
$IP -n "$AP_WPA2_NETNS" addr add 10.99.0.1/24 dev nt-ap
$IP -n "$AP_WPA2_NETNS" link set nt-ap up
$IP -n far addr add 10.99.0.2/24 dev nt-far
$IP -n far link set nt-far up
$IP -n far link set lo up
$IP -n far route add default via 10.99.0.1
$IP netns exec "$AP_WPA2_NETNS" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
export NETTOOLS_FAR_IP=10.99.0.2
# ... and over IPv6: fd00:99::/64 on the same veth pair, the AP's netns forwarding IPv6 too.
$IP -n "$AP_WPA2_NETNS" addr add fd00:99::1/64 dev nt-ap nodad
$IP -n far addr add fd00:99::2/64 dev nt-far nodad
$IP -n far -6 route add default via fd00:99::1
$IP netns exec "$AP_WPA2_NETNS" sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
export NETTOOLS_FAR_IPV6=fd00:99::2

# The captive portal of our own, in the open AP's netns (tests/src/bin/captive-lab.rs): on :8090
# the check URL redirects (302 → 302 → the portal page) until a cookie the portal issued comes
# back; the page's login form has a hidden token bound to a session cookie, a room field and an
# accept checkbox; a JavaScript-only portal and a hostile one beside it.
export CAPTIVE_DIR=/run/captive
$IP netns exec "$AP_OPEN_NETNS" captive-lab $CAPTIVE_DIR > $LOGS/captive-lab.log 2>&1 &
i=0; while [ ! -e $CAPTIVE_DIR/ready ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done

# EAP certificate paths are accepted only from the box's certificates directory
# (/etc/wifi-isolate/certs in the box): the daemon mounts its certs_dir there read-only. With
# certs_dir = that same path, the plain netns box of the stdio half sees the same files.
export AP_EAP_CERTS_DIR=/etc/wifi-isolate/certs
mkdir -p "$AP_EAP_CERTS_DIR"
cp "$AP_EAP_CA_CERT" "$AP_EAP_CERTS_DIR/ca.pem"
cp "$AP_EAP_CLIENT_CERT" "$AP_EAP_CERTS_DIR/client.pem"
cp "$AP_EAP_CLIENT_KEY" "$AP_EAP_CERTS_DIR/client.key"
# The netns box reads them as its own unprivileged uid (engine.box_uid): the key stays 0600.
chown 1878982656:1878982656 "$AP_EAP_CERTS_DIR"/*
chmod 0600 "$AP_EAP_CERTS_DIR/client.key"
printf '[engine]\nkind = "netns"\ncerts_dir = "%s"\n[agent]\nlog = "debug"\n' "$AP_EAP_CERTS_DIR" \
  > /etc/wifi-isolate/config.toml

# Access-point mode (issue 16): the second station radio is the client of the box's own access
# point, in a netns of its own — plain wpa_supplicant + busybox udhcpc there, driven by
# tests/src/bin/hwsim-agent-client/ap.rs.
set -- $STATIONS; export AP_CLIENT_IFACE=${2:?the agent lab needs stations = 2}
set -- $STATION_PHYS; export AP_CLIENT_PHY=$2
export AP_CLIENT_NETNS=apcli AP_BOX_PASSPHRASE=box-ap-passphrase-q7W2
$IP netns add apcli
iw phy "$AP_CLIENT_PHY" set netns name apcli
$IP -n apcli link set lo up
$IP -n apcli link set "$AP_CLIENT_IFACE" up
echo "moved $AP_CLIENT_PHY ($AP_CLIENT_IFACE) into netns apcli: the box's access point's client"

# --- 1. the daemon's netns box ----------------------------------------------------------------
mkdir -p /run/wifi-isolate
wifi-isolate run "$STA" --engine netns > $LOGS/agent.log 2>&1 &
DAEMON=$!
SOCK=/run/wifi-isolate/box/$STA/mcp.sock
i=0
while ! grep -q "agent ready" $LOGS/agent.log 2>/dev/null || [ ! -S "$SOCK" ]; do
  i=$((i+1)); [ $i -lt 600 ] || { echo "FAIL the daemon's box never got ready"; cat $LOGS/agent.log; exit 1; }
  kill -0 $DAEMON 2>/dev/null || { echo "FAIL the daemon exited"; cat $LOGS/agent.log; exit 1; }
  sleep 0.05
done
BOXPID=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' /run/wifi-isolate/.netns/$STA.json)
echo "daemon $DAEMON isolated $PHY ($STA) in its netns box (agent pid $BOXPID)"
# The agent's private upload dir, as the host sees it through the box's root.
export AGENT_UPLOAD_DIR=/proc/$BOXPID/root/run/wifi-isolate-agent/certs
export AGENT_SHARED_DIR=/run/wifi-isolate/box/$STA
# The box's agent, for the radio checks that read `iw … station dump` in its netns.
export AGENT_BOX_PID=$BOXPID
rc=0
hwsim-agent-client unix "$SOCK" || rc=1
# check NAME CONDITION...: one tally line (tests/src/tally.rs) either way.
check() { name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; rc=1; fi; }
kill -TERM $DAEMON
check "release: the daemon exited 0" wait $DAEMON
check "release: the agent's socket is gone" [ ! -e "$SOCK" ]
check "release: the box's agent is gone" [ ! -d /proc/$BOXPID ]
i=0
while ! iw dev | grep -q "Interface $STA\$" && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.05; done
check "release: $STA came home" sh -c "iw dev | grep -q 'Interface $STA\$'"
# The client left an access point running: the agent's SIGTERM cleanup stopped hostapd, which
# put the interface back in station mode.
check "release: $STA is a station again after the access point (type managed)" sh -c "iw dev $STA info | grep -q 'type managed'"
check "release: no IPv4 address left" sh -c "! $IP -4 addr show dev $STA 2>/dev/null | grep -q inet"
check "release: no global IPv6 address left" sh -c "! $IP -6 addr show dev $STA scope global 2>/dev/null | grep -q inet6"

# --- 2. stdio, in a plain netns -----------------------------------------------------------------
$IP netns add box
mkdir -p /etc/netns/box
echo "# box resolv.conf" > /etc/netns/box/resolv.conf
iw phy "$PHY" set netns name box
echo "moved $PHY ($STA) into netns box"
$IP netns exec box $IP link set lo up
# The box's own CA store (what a distribution's ca-certificates gives it): the lab's CA in the
# stdio box's /etc/ssl/certs/ca-certificates.crt (`ip netns exec` binds /etc/netns/box/ssl over
# /etc/ssl), so HTTPS to the lab verifies there without ca_pem; the daemon's box above did not
# have it (its checks see the same server untrusted without ca_pem).
mkdir -p /etc/ssl /etc/netns/box/ssl/certs
cp $NETTOOLS_DIR/ca.pem /etc/netns/box/ssl/certs/ca-certificates.crt
export AGENT_UPLOAD_DIR=/run/box-agent2/certs
export AGENT_SHARED_DIR=/run/box-agent2
# What an agent killed with a concurrent access point up leaves on the phy: its `<iface>ap`
# interface. The stdio agent, started without --interface, must drive $STA and delete it.
$IP netns exec box iw dev "$STA" interface add "${STA}ap" type __ap
check "stdio: a leftover ${STA}ap (type AP) on the phy before the agent starts" sh -c "$IP netns exec box iw dev ${STA}ap info | grep -q 'type AP'"
hwsim-agent-client stdio -- $IP netns exec box wifi-isolate-agent --stdio \
  --runtime-dir /run/box-agent2 2>> $LOGS/agent-stdio.log || rc=1
check "stdio: the agent deleted the leftover ${STA}ap on its start and drove $STA" sh -c \
  "! $IP netns exec box iw dev | grep -q 'Interface ${STA}ap\$' && grep -q 'leftover interfaces of an earlier agent deleted.*${STA}ap' $LOGS/agent-stdio.log && grep -q 'agent ready iface=$STA\$' $LOGS/agent-stdio.log"
# SAE-PK (tests/src/bin/hwsim-agent-client/saepk.rs): Debian's wpa_supplicant has no SAE-PK, so
# a third, short stdio session runs the agent with the same Debian source built with it
# (tests/vm/lab/saepk-build.sh, on the share): sae_pk required joins saepk; its rogue twin and an
# ordinary SAE AP are refused.
hwsim-agent-client saepk -- $IP netns exec box wifi-isolate-agent --stdio \
  --runtime-dir /run/box-agent3 --wpa-supplicant /share/.hwsim/wpa_supplicant-saepk \
  2>> $LOGS/agent-saepk.log || rc=1

cp $CAPTIVE_DIR/requests.log $LOGS/captive-requests.log 2>/dev/null || true
# EAPOL on the netdev (why the agent runs wpa_supplicant with driver_param=control_port=0): a
# plain wpa_supplicant joins the WPA2 AP in the stdio box, once as the agent runs it and once with
# its default (nl80211's control port), while tcpdump on the interface counts EAPOL frames.
eapol_on_netdev() {  # $1: tag, $2: a driver_param line or nothing
  d=/run/measure-$1; l=$LOGS/measure-$1; mkdir -p $d $l
  printf 'ctrl_interface=%s/ctrl\n%s\nnetwork={\n ssid="%s"\n psk="%s"\n key_mgmt=WPA-PSK\n}\n' \
    $d "$2" "$AP_WPA2_SSID" "$AP_WPA2_PSK" > $d/conf
  # (libpcap refuses an interface that is down: the stdio agent left it so)
  $IP netns exec box $IP link set "$STA" up 2> $l/up.log || true
  $IP netns exec box tcpdump -Z root -U -i "$STA" -nn -w $l/eapol.pcap 2> $l/tcpdump.log &
  td=$!
  i=0; while ! grep -q listening $l/tcpdump.log 2>/dev/null && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.05; done
  $IP netns exec box wpa_supplicant -D nl80211 -i "$STA" -c $d/conf -B -P $d/pid > $l/wpa.log 2>&1 || true
  i=0; while ! $IP netns exec box wpa_cli -p $d/ctrl -i "$STA" status 2>/dev/null | grep -q wpa_state=COMPLETED && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done
  $IP netns exec box wpa_cli -p $d/ctrl -i "$STA" status 2>&1 | grep wpa_state > $l/state.txt || true
  sleep 0.5
  kill "$(cat $d/pid 2>/dev/null)" 2>/dev/null || true
  sleep 0.3
  kill -INT $td 2>/dev/null || true; wait $td 2>/dev/null || true
  tcpdump -Z root -r $l/eapol.pcap -nn -e > $l/dump.txt 2>&1 || true
  grep -c EAPOL $l/dump.txt || true
}
n_off=$(eapol_on_netdev off driver_param=control_port=0)
n_def=$(eapol_on_netdev default "")
echo "measure: EAPOL frames tcpdump saw on $STA: $n_off with driver_param=control_port=0, $n_def with wpa_supplicant's default (nl80211 control port)"
check "capture: with control_port=0 (as the agent runs wpa_supplicant) the 4-way handshake passes the netdev" [ "${n_off:-0}" -ge 4 ]

leaked=0
for s in "$AP_BOX_PASSPHRASE" "$AP_WPA2_PSK" "$AP_SAE_PSK" "$AP_HIDDEN_PSK" "$AP_WPA2B_PSK" "$AP_EAP_PEAP_PASSWORD" "$AP_EAP_TTLS_PASSWORD" "$AP_HS20_PASSWORD" "wrong passpoint secret" "$AP_SAEPK_PSK"; do
  grep -qF "$s" $LOGS/agent.log $LOGS/agent-stdio.log $LOGS/agent-saepk.log && leaked=1
done
check "no secret in the agent's logs" [ $leaked = 0 ]
exit $rc
