#!/usr/bin/env bash
# build-rpm.sh [--out DIR] — build the wifi-isolate binary RPM from this repository.
#
# `rpmbuild -bb --build-in-place` runs packaging/rpm/wifi-isolate.spec in the repository itself,
# so `cargo build --release --locked --bins` (offline, target dir $CARGO_TARGET_DIR, default the
# repo's target/) reuses an existing release build. Works on Fedora and on this project's Debian
# machines: where systemd-rpm-macros are missing, packaging/rpm/macros.fallback stands in, and
# BuildRequires are not checked (--nodeps: Debian's cargo/rust/help2man are not RPMs).
#
# Output: DIR (default target/pkg) gets the .rpm and build-rpm.log. The LAST line of stdout is
# the absolute path of the .rpm; everything else goes to stderr. Afterwards the package is
# checked: `rpm -qlp` must list every expected path, `rpm -qp --scripts` is shown.
set -euo pipefail
# The whole script is one function, read before it runs: editing the file cannot break a run.
main() {
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$REPO/target/pkg"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-rpm.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# One build at a time per output dir (the tests and the full-system VM may call this together).
exec 9>"$OUT/.build-rpm.lock"
flock 9
log() { printf 'build-rpm.sh: %s\n' "$*" >&2; }
SPEC="$REPO/packaging/rpm/wifi-isolate.spec"

for t in rpmbuild rpm help2man; do
  command -v "$t" >/dev/null || { log "missing $t: run tests/deps.sh packaging"; exit 1; }
done
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
# Never download: every crate must already be in cargo's registry cache.
export CARGO_NET_OFFLINE=true
command -v cargo >/dev/null || export PATH="$CARGO_HOME/bin:$PATH"
command -v cargo >/dev/null || { log "missing cargo (the Rust toolchain, rustup)"; exit 1; }
if [ "$CARGO_TARGET_DIR" != "$REPO/target" ]; then
  # The spec installs from target/release (as on a Fedora build from a tarball).
  log "CARGO_TARGET_DIR must be $REPO/target for the RPM build"; exit 1
fi

# The RPM version must be the crate's (Cargo's 1.2.0-rc.1 is RPM's 1.2.0~rc.1).
cargo_version="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"
want="${cargo_version/-/\~}"
spec_version="$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC" | head -n1)"
if [ "$spec_version" != "$want" ]; then
  log "version mismatch: Cargo.toml has $cargo_version, packaging/rpm/wifi-isolate.spec has"
  log "Version: $spec_version; set it to $want (Release: 1) and add a %changelog entry."
  exit 1
fi

args=(-bb --build-in-place --nodeps
  --define "_topdir $OUT/rpmbuild"
  --define "_rpmdir $OUT"
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"
  --define "_sourcedir $REPO/systemd")
if [ -z "$(rpm --eval '%{?systemd_post:1}')" ]; then
  log "no systemd-rpm-macros here: loading packaging/rpm/macros.fallback"
  args+=(--load "$REPO/packaging/rpm/macros.fallback")
fi
# Debian's brp-compress is a bash script under #!/bin/sh (read -d fails in dash): man pages
# stayed uncompressed. Run it with bash, as Fedora does.
if head -n1 /usr/lib/rpm/brp-compress 2>/dev/null | grep -qx '#!/bin/sh' \
   && grep -q 'read -r -d' /usr/lib/rpm/brp-compress && command -v bash >/dev/null; then
  args+=(--define "__brp_compress bash /usr/lib/rpm/brp-compress %{?_prefix}")
fi

log "rpmbuild in $REPO (log: $OUT/build-rpm.log)"
start=$SECONDS
rm -rf "$OUT/rpmbuild"
if ! (cd "$REPO" && rpmbuild "${args[@]}" "$SPEC") >"$OUT/build-rpm.log" 2>&1; then
  tail -n 40 "$OUT/build-rpm.log" >&2
  log "rpmbuild failed, full log: $OUT/build-rpm.log"
  exit 1
fi
rpmfile="$(sed -n 's/^Wrote: \(.*\.rpm\)$/\1/p' "$OUT/build-rpm.log" | tail -n1)"
[ -f "$rpmfile" ] || { log "rpmbuild wrote no .rpm (see $OUT/build-rpm.log)"; exit 1; }
rm -rf "$OUT/rpmbuild"
log "built $rpmfile in $((SECONDS - start))s"

# Checks: every expected path, and the scriptlets.
files="$(rpm -qlp "$rpmfile" 2>/dev/null)"
missing=0
for p in /usr/bin/wifi-isolate /usr/bin/wifi-isolate-agent \
         /usr/lib/systemd/system/wifi-isolate@.service /usr/lib/systemd/system/wifi-isolate@.socket \
         /usr/lib/sysusers.d/wifi-isolate.conf /usr/lib/tmpfiles.d/wifi-isolate.conf \
         /usr/lib/wifi-isolate/config.toml \
         /usr/share/man/man8/wifi-isolate.8.gz /usr/share/man/man8/wifi-isolate-agent.8.gz; do
  grep -qxF "$p" <<<"$files" || { log "missing in the RPM: $p"; missing=1; }
done
for r in "$REPO"/udev/*-wifi-isolate.rules; do
  p="/usr/lib/udev/rules.d/$(basename "$r")"
  grep -qxF "$p" <<<"$files" || { log "missing in the RPM: $p"; missing=1; }
done
log "rpm -qlp:"; printf '  %s\n' $files >&2
log "rpm -qp --scripts:"; rpm -qp --scripts "$rpmfile" 2>/dev/null | sed 's/^/  /' >&2
echo "$rpmfile"
[ "$missing" = 0 ] || { log "the RPM lacks expected paths"; exit 1; }
}
main "$@"
