#!/usr/bin/env bash
# netns-startup.sh — start-up and release of the built-in netns engine's box, two builds compared
# in the same VM boot (the target: the hardened bubblewrap box no slower than 1.2x the sandbox
# before it). A benchmark: it reports, it does not pass or fail on the figures; not run by CI.
#
#   bash tests/bench/netns-startup.sh                    # old = 114cf57, new = the working tree
#   WI_BENCH_N=20 bash tests/bench/netns-startup.sh      # more rounds (default 10)
#   WI_BENCH_OLD=REV WI_BENCH_NEW=REV bash tests/bench/netns-startup.sh   # any two commits
#
# What it does: builds `wifi-isolate` + `wifi-isolate-agent` (release) twice — WI_BENCH_OLD
# (default 114cf57, the last commit before "netns engine: bubblewrap sandbox", e632f83) in a git
# worktree of its own (WI_BENCH_OLD_WT, default target/bench/netns-startup/wt-old, with its own
# target dir; kept as a build cache: `git worktree remove --force DIR`), and the new one from the
# working tree (`cargo build --release --bins`), or WI_BENCH_NEW (a commit) in a second worktree.
# Compiles a small timing helper (`nsbench-round`, C, below; needs gcc). Boots the hwsim initramfs
# VM (tests/vm/lab/boot-initramfs.sh: 1 station radio, no AP, 1 GB) with the guest script
# tests/bench/netns-startup-guest.sh, which copies each pair to /opt/old and /opt/new (each daemon
# runs the agent next to it) and alternates them round by round (old first in odd rounds, new
# first in even ones), after one untimed warm-up each. Per start: `wifi-isolate run STATION
# --engine netns` started by hand, its NOTIFY_SOCKET a datagram socket of the helper; timed:
#   ready — fork+exec → READY=1 (resolve, box, phy moved, agent answering)
#   home  — SIGTERM (WI_BENCH_SETTLE_MS after READY, default 1000) → /sys/class/net/STATION back
#   exit  — SIGTERM → the daemon's exit (box removed too)
# plus the daemon's own log marks (its stderr, RFC 3339 timestamps on the guest's wall clock):
# "starting", "resolved wiphy", "box started", "phy moved into the box", the agent's "wireless
# interface found", "wpa_supplicant is up", "agent ready", the daemon's "isolated in …",
# "SIGTERM: releasing", "phy brought home", "box stopped", "released". The box dir layout differs between the builds
# (/run/wifi-isolate/IFACE vs /run/wifi-isolate/box/IFACE): nothing here depends on it.
#
# Output: target/bench/netns-startup.md (medians with the distribution-free 95 % interval of the
# median from order statistics, the per-round ratio new/old with its interval, the breakdown),
# the raw rounds in target/bench/netns-startup/share/rounds.txt, daemon logs of the last round and
# the VM's logs in target/bench/netns-startup/share/logs/. Every build and the VM hold
# /tmp/wi-vm.lock (one TCG VM at a time on the 2 cores). Absolute times are TCG times (10-30x
# hardware); compare the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
N=${WI_BENCH_N:-10}
OLD=${WI_BENCH_OLD:-114cf57}
NEW=${WI_BENCH_NEW:-}
SETTLE_MS=${WI_BENCH_SETTLE_MS:-1000}
PAUSE_MS=${WI_BENCH_PAUSE_MS:-500}
LOCK=/tmp/wi-vm.lock
OUT=$REPO/target/bench/netns-startup
OLD_WT=${WI_BENCH_OLD_WT:-$OUT/wt-old}
NEW_WT=${WI_BENCH_NEW_WT:-$OUT/wt-new}
log() { printf 'netns-startup.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (the VM harness)"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "WI_BENCH_N must be a positive number"
command -v gcc >/dev/null || die "needs gcc (the timing helper)"
command -v python3 >/dev/null || die "needs python3 (the statistics)"
tests/deps.sh bench >&2
mkdir -p "$OUT"

# build_rev REV WORKTREE DEST: both binaries of commit REV, built in WORKTREE, copied to DEST
build_rev() {
  local rev wt=$2 dest=$3
  rev=$(git rev-parse --verify "$1^{commit}") || die "no such commit: $1"
  if [ ! -e "$wt/.git" ]; then
    git worktree add --detach "$wt" "$rev" >&2
  elif [ "$(git -C "$wt" rev-parse HEAD)" != "$rev" ]; then
    git -C "$wt" checkout --detach "$rev" >&2
  fi
  log "release build of $(git log -1 --format='%h %s' "$rev") in $wt"
  (cd "$wt" && CARGO_TARGET_DIR="$wt/target" flock "$LOCK" cargo build --release --bins >&2)
  mkdir -p "$dest"
  cp "$wt/target/release/wifi-isolate" "$wt/target/release/wifi-isolate-agent" "$dest/"
  git log -1 --format='%h %s' "$rev" > "$dest/label"
}

share=$OUT/share
rm -rf "$share"; mkdir -p "$share/variants"
build_rev "$OLD" "$OLD_WT" "$share/variants/old"
if [ -n "$NEW" ]; then
  build_rev "$NEW" "$NEW_WT" "$share/variants/new"
else
  log "release build of the working tree"
  flock "$LOCK" cargo build --release --bins >&2
  mkdir -p "$share/variants/new"
  cp target/release/wifi-isolate target/release/wifi-isolate-agent "$share/variants/new/"
  dirty=$(git status --porcelain --untracked-files=no | wc -l)
  echo "working tree at $(git log -1 --format='%h %s')$([ "$dirty" = 0 ] || echo " + $dirty modified files")" \
    > "$share/variants/new/label"
fi

log "timing helper"
cat > "$OUT/nsbench-round.c" <<'CSRC'
/* One start/stop round of `wifi-isolate run IFACE --engine netns`, timed (monotonic clock).
 * usage: nsbench-round DAEMON IFACE LOG SETTLE_MS
 * Binds a datagram NOTIFY_SOCKET, starts DAEMON with it, waits for READY=1, checks IFACE left
 * the host, waits SETTLE_MS, sends SIGTERM, polls /sys/class/net/IFACE every 2 ms until it is
 * home, waits for the daemon's exit, then reads the daemon's log (RFC 3339 timestamps) for its
 * own step marks. Prints one line of key=value (ms since the start, -1 = not seen). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono_ms(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static double real_ms(void) {
  struct timespec t; clock_gettime(CLOCK_REALTIME, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static void die(const char *m) { fprintf(stderr, "nsbench-round: %s: %s\n", m, strerror(errno)); exit(2); }
static void sleep_ms(int ms) { struct timespec t = {ms / 1000, (ms % 1000) * 1000000L}; nanosleep(&t, 0); }
static int present(const char *p) { return access(p, F_OK) == 0; }

/* ms of day of the first line containing MARK, after the RFC 3339 "...THH:MM:SS.ffffffZ" stamp */
static double log_mark(const char *log, const char *mark) {
  FILE *f = fopen(log, "r");
  char line[4096];
  double r = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    char *t = strchr(line, 'T');
    int h, m; double s;
    if (!strstr(line, mark) || !t || sscanf(t + 1, "%d:%d:%lf", &h, &m, &s) != 3) continue;
    r = (h * 3600 + m * 60 + s) * 1e3;
    break;
  }
  fclose(f);
  return r;
}

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: nsbench-round DAEMON IFACE LOG SETTLE_MS\n"); return 2; }
  const char *daemon = argv[1], *iface = argv[2], *log = argv[3];
  int settle = atoi(argv[4]);
  char sys[256], sock_path[108];
  snprintf(sys, sizeof sys, "/sys/class/net/%s", iface);
  snprintf(sock_path, sizeof sock_path, "/run/nsbench-notify.sock");
  if (!present(sys)) { fprintf(stderr, "nsbench-round: %s is not in the host before the start\n", iface); return 2; }
  unlink(sock_path);
  int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  strcpy(a.sun_path, sock_path);
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (lfd < 0) die(log);

  double r0 = real_ms(), t0 = mono_ms();
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    setenv("NOTIFY_SOCKET", sock_path, 1);
    setenv("WIFI_ISOLATE_LOG", "info,wifi_isolate=debug", 1);
    int nul = open("/dev/null", O_RDONLY);
    dup2(nul, 0); dup2(lfd, 1); dup2(lfd, 2);
    execl(daemon, daemon, "run", iface, "--engine", "netns", (char *)0);
    _exit(127);
  }
  double ready = -1, home = -1, gone = -1, t_term = -1;
  int status = 0, exited = 0, in_host_at_ready = -1;
  char buf[8192];
  while (ready < 0) {            /* READY=1, or the daemon's end, or 120 s */
    struct pollfd p = {s, POLLIN, 0};
    int n = poll(&p, 1, 50);
    if (n > 0) {
      ssize_t k = recv(s, buf, sizeof buf - 1, 0);
      if (k > 0) {
        buf[k] = 0;
        for (char *l = strtok(buf, "\n"); l; l = strtok(0, "\n"))
          if (!strcmp(l, "READY=1")) ready = mono_ms() - t0;
      }
    }
    if (ready < 0 && waitpid(pid, &status, WNOHANG) == pid) { exited = 1; break; }
    if (mono_ms() - t0 > 120000) break;
  }
  if (ready >= 0) {
    in_host_at_ready = present(sys);
    sleep_ms(settle);
    t_term = mono_ms();
    kill(pid, SIGTERM);
    while (mono_ms() - t_term < 60000) {
      if (home < 0 && present(sys)) home = mono_ms() - t_term;
      if (waitpid(pid, &status, WNOHANG) == pid) { exited = 1; gone = mono_ms() - t_term; if (home < 0 && present(sys)) home = gone; break; }
      sleep_ms(2);
    }
  }
  if (!exited) { kill(pid, SIGKILL); waitpid(pid, &status, 0); }
  close(s); unlink(sock_path);
  /* the daemon's own marks, on the wall clock (ms of day) against the start's */
  double day0 = r0 - 86400e3 * (long long)(r0 / 86400e3);
  /* the first NSTART are start marks (against the start), the rest stop marks (against SIGTERM);
   * "wireless interface found", "wpa_supplicant is up", "agent ready" are the agent's own lines
   * (its stderr is the daemon's); "cgroup" only the bubblewrap engine logs (its box cgroup, made or
   * not, after the user namespace and before the seccomp programs and bwrap) */
  enum { NSTART = 9, NMARKS = 13 };
  const char *marks[NMARKS] = {" starting ", "resolved wiphy", "cgroup", "box started", "phy moved into the box",
                               "wireless interface found", "wpa_supplicant is up", "agent ready",
                               "isolated in", "SIGTERM: releasing", "phy brought home", "box stopped",
                               " released"};
  const char *keys[NMARKS] = {"log_up", "log_resolved", "log_cgroup", "log_box", "log_phy", "log_iface", "log_wpas",
                              "log_agent", "log_isolated", "log_term", "log_home", "log_boxstop",
                              "log_released"};
  double rterm = t_term < 0 ? 0 : r0 + (t_term - t0);
  double dayterm = rterm - 86400e3 * (long long)(rterm / 86400e3);
  printf("ready=%.1f home=%.1f exit=%.1f rc=%d in_host_at_ready=%d",
         ready, home, gone, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), in_host_at_ready);
  for (int i = 0; i < NMARKS; i++) {
    double v = log_mark(log, marks[i]);
    double base = i < NSTART ? day0 : dayterm;
    if (v >= 0) { v -= base; if (v < -43200e3) v += 86400e3; }
    printf(" %s=%.1f", keys[i], v < -1e6 ? -1 : v);
  }
  printf("\n");
  return ready >= 0 && in_host_at_ready == 0 && home >= 0 && exited && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
CSRC
gcc -O2 -Wall -Wextra -o "$OUT/nsbench-round" "$OUT/nsbench-round.c"

printf 'N=%s\nSETTLE_MS=%s\nPAUSE_MS=%s\n' "$N" "$SETTLE_MS" "$PAUSE_MS" > "$share/bench.conf"
log "booting the hwsim VM (N=$N rounds, each variant once per round)"
t_vm=$(date +%s)
rc=0
flock "$LOCK" bash tests/vm/lab/boot-initramfs.sh --stations 1 --share "$share" \
  --script tests/bench/netns-startup-guest.sh --mem 1024 --timeout $((180 + N * 40)) --quiet \
  --bin "$OUT/nsbench-round" --bin "$share/variants/new/wifi-isolate" >&2 || rc=$?
log "VM: $(($(date +%s) - t_vm)) s (rc $rc)"
[ -s "$share/rounds.txt" ] || die "the guest wrote no rounds (rc $rc); logs: $share/logs"

python3 - "$share/rounds.txt" "$share/variants" "$N" > "$REPO/target/bench/netns-startup.md" <<'PY'
import math, statistics, sys
rounds_file, variants, n_rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = {}
for line in open(rounds_file):
    f = line.split()
    if len(f) < 4 or "=" not in f[3]:
        continue
    kv = dict(x.split("=", 1) for x in f[3:] if "=" in x)
    rows[(f[0], int(f[1]))] = {k: float(v) for k, v in kv.items()}

def ci(xs):
    """Median and the distribution-free interval [x(k), x(n+1-k)] of the median, k the largest
    with P(Bin(n, 1/2) <= k-1) <= 0.025; returns (median, lo, hi, coverage)."""
    xs = sorted(xs); n = len(xs)
    if n == 0:
        return (math.nan,) * 4
    cdf, k = 0.0, 0
    while True:
        p = math.comb(n, k) / 2 ** n
        if cdf + p > 0.025:
            break
        cdf += p; k += 1
    if k == 0:
        return statistics.median(xs), xs[0], xs[-1], math.nan
    return statistics.median(xs), xs[k - 1], xs[n - k], 1 - 2 * cdf

def ok(r):
    return r is not None and r.get("rc") == 0 and r.get("in_host_at_ready") == 0 and r.get("ready", -1) >= 0 and r.get("home", -1) >= 0

label = {v: open(f"{variants}/{v}/label").read().strip() for v in ("old", "new")}
counted = [i for i in range(1, n_rounds + 1) if ok(rows.get(("old", i))) and ok(rows.get(("new", i)))]
bad = n_rounds - len(counted)
def fmt(c, unit=" ms", d=0):
    m, lo, hi, cov = c
    return f"{m:.{d}f}{unit} ({lo:.{d}f}–{hi:.{d}f})"

print(f"old = `{label['old']}`; new = `{label['new']}`. N = {n_rounds} paired rounds "
      f"({len(counted)} counted, {bad} with a failed start or stop), alternating which goes first.")
cov = ci(list(range(len(counted))))[3]
print(f"Median (95 % interval of the median from order statistics, coverage {cov:.1%}); "
      "ratio = new/old within each round, then its median and interval.\n")
print("| measure | old | new | new/old per round | target |")
print("|---|---|---|---|---|")
for key, what, target in (("ready", "start → READY=1", "≤ 1.20"), ("home", "SIGTERM → interface home", ""),
                          ("exit", "SIGTERM → daemon exited", "")):
    o = [rows[("old", i)][key] for i in counted]
    nw = [rows[("new", i)][key] for i in counted]
    rat = [b / a for a, b in zip(o, nw) if a > 0]
    r = ci(rat)
    verdict = ""
    if target:
        verdict = f"{target}: " + ("**met**" if r[0] <= 1.2 else "**missed**") + \
            (" (interval entirely below)" if r[2] <= 1.2 else " (interval reaches above)" if r[0] <= 1.2 else "")
    print(f"| {what} | {fmt(ci(o))} | {fmt(ci(nw))} | **{r[0]:.2f}×** ({r[1]:.2f}–{r[2]:.2f}) | {verdict} |")

print("\nWhere the time goes (daemon log marks, ms after the start resp. after SIGTERM; medians "
      "with their intervals; the log's own write adds a little):\n")
print("| step | old | new | new − old (median of per-round differences) |")
print("|---|---|---|---|")
steps = (("exec → first log line \"starting\"", None, "log_up"),
         ("\"starting\" → \"resolved wiphy\"", "log_up", "log_resolved"),
         ("\"resolved wiphy\" → \"box started\" (NM check, the box's spawn)", "log_resolved", "log_box"),
         ("  of which → \"…cgroup…\" (new only: NM check, user namespace, cgroup)", "log_resolved", "log_cgroup"),
         ("  of which \"…cgroup…\" → \"box started\" (new only: seccomp, bwrap until its info fd)", "log_cgroup", "log_box"),
         ("\"box started\" → \"phy moved into the box\"", "log_box", "log_phy"),
         ("\"phy moved\" → agent: \"wireless interface found\"", "log_phy", "log_iface"),
         ("agent: \"interface found\" → \"wpa_supplicant is up\"", "log_iface", "log_wpas"),
         ("agent: \"wpa_supplicant is up\" → \"agent ready\"", "log_wpas", "log_agent"),
         ("agent: \"agent ready\" → daemon: \"isolated in …\" (its 50 ms socket probe)", "log_agent", "log_isolated"),
         ("daemon: \"isolated in …\" → READY=1 received", "log_isolated", "ready"),
         ("SIGTERM → \"SIGTERM: releasing\"", None, "log_term"),
         ("\"releasing\" → \"phy brought home\"", "log_term", "log_home"),
         ("\"phy brought home\" → \"box stopped\"", "log_home", "log_boxstop"),
         ("\"box stopped\" → \"released\"", "log_boxstop", "log_released"),
         ("\"released\" → exited", "log_released", "exit"))
for what, a, b in steps:
    def d(r):
        if r.get(b, -1) < 0 or (a and r.get(a, -1) < 0):
            return None
        return r[b] - (r[a] if a else 0.0)
    vals = {v: [d(rows[(v, i)]) for i in counted] for v in ("old", "new")}
    have = {v: bool(vals[v]) and all(x is not None for x in vals[v]) for v in vals}
    cell = {v: fmt(ci(vals[v])) if have[v] else "–" for v in vals}
    if have["old"] and have["new"]:
        diff = ci([b_ - a_ for a_, b_ in zip(vals["old"], vals["new"])])
        dcell = f"{diff[0]:+.0f} ms ({diff[1]:+.0f} to {diff[2]:+.0f})"
    else:
        dcell = ""
    print(f"| {what} | {cell['old']} | {cell['new']} | {dcell} |")
print("\nPer round (ms; ready / home / exit):\n")
print("| round | first | old | new | ready new/old |")
print("|---|---|---|---|---|")
for i in range(0, n_rounds + 1):
    o, nw = rows.get(("old", i)), rows.get(("new", i))
    first = "old" if i % 2 == 1 or i == 0 else "new"
    s = lambda r: "failed" if not ok(r) else f"{r['ready']:.0f} / {r['home']:.0f} / {r['exit']:.0f}"
    q = f"{nw['ready'] / o['ready']:.2f}" if ok(o) and ok(nw) else "–"
    print(f"| {'warm-up' if i == 0 else i} | {first} | {s(o)} | {s(nw)} | {q} |")
PY
cat "$REPO/target/bench/netns-startup.md"
[ "$rc" = 0 ] || log "the guest reported failed rounds (rc $rc): see $share/logs/test.log"
exit "$rc"
