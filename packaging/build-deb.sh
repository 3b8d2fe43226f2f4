#!/usr/bin/env bash
# build-deb.sh [--out DIR] [--no-lintian] — build the wifi-isolate .deb from this repository.
#
# dpkg-buildpackage needs debian/ at the top of the source tree, and the repository keeps it in
# packaging/debian: the build runs in a scratch tree DIR/tree/wifi-isolate-VERSION whose entries
# point into the repository plus a copy of packaging/debian as debian/. debian/rules
# builds in the repository itself (`cargo build --release --locked --bins`, offline, target dir
# $CARGO_TARGET_DIR, default the repo's target/), so an existing release build is reused.
#
# Output: DIR (default target/pkg) gets the .deb, .buildinfo, .changes and build-deb.log. The
# LAST line of stdout is the absolute path of the .deb (callers take it from there); everything
# else goes to stderr. Then lintian checks the .deb: errors and warnings fail the script
# (exit 1, the path is printed all the same). --no-lintian skips that check.
set -euo pipefail
# The whole script is one function, read before it runs: editing the file cannot break a run.
main() {
REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$REPO/target/pkg"
LINTIAN=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --no-lintian) LINTIAN=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# One build at a time per output dir (the tests and the full-system VM may call this together).
exec 9>"$OUT/.build-deb.lock"
flock 9
log() { printf 'build-deb.sh: %s\n' "$*" >&2; }

for t in dpkg-buildpackage dpkg-parsechangelog dh help2man; do
  command -v "$t" >/dev/null || { log "missing $t: run tests/deps.sh packaging"; exit 1; }
done
[ "$LINTIAN" = 0 ] || command -v lintian >/dev/null || { log "missing lintian: run tests/deps.sh packaging"; exit 1; }

# Cargo and its caches as the caller has them (debhelper points HOME elsewhere for its tools).
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
# debian/rules runs cargo in the repository itself (see the top of packaging/debian/rules).
export WI_SRCDIR="$REPO"
command -v cargo >/dev/null || export PATH="$CARGO_HOME/bin:$PATH"
command -v cargo >/dev/null || { log "missing cargo (the Rust toolchain, rustup)"; exit 1; }

# The Debian version must be the crate's (Cargo's 1.2.0-rc.1 is Debian's 1.2.0~rc.1).
cargo_version="$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1)"
want="${cargo_version/-/\~}"
deb_version="$(dpkg-parsechangelog -l "$REPO/packaging/debian/changelog" -SVersion)"
if [ "${deb_version%-*}" != "$want" ]; then
  log "version mismatch: Cargo.toml has $cargo_version, so packaging/debian/changelog must start"
  log "with version $want (or $want-N), but it has $deb_version."
  log "Add an entry (by hand, or: dch -c packaging/debian/changelog -v $want 'New upstream version.')"
  exit 1
fi

# The scratch source tree.
tree="$OUT/tree/wifi-isolate-$deb_version"
rm -rf "$OUT/tree"
mkdir -p "$tree"
# Directories are symlinks; top-level files are copies (dh_installdocs would keep a symlink).
for e in "$REPO"/*; do
  case "$(basename "$e")" in target|debian) continue ;; esac
  if [ -d "$e" ]; then ln -s "$e" "$tree/"; else cp -L "$e" "$tree/"; fi
done
cp -a "$REPO/packaging/debian" "$tree/debian"

log "dpkg-buildpackage in $tree (log: $OUT/build-deb.log)"
start=$SECONDS
if ! (cd "$tree" && dpkg-buildpackage -b -us -uc) >"$OUT/build-deb.log" 2>&1; then
  tail -n 40 "$OUT/build-deb.log" >&2
  log "dpkg-buildpackage failed, full log: $OUT/build-deb.log"
  exit 1
fi
arch="$(dpkg-architecture -qDEB_HOST_ARCH)"
base="wifi-isolate_${deb_version}_${arch}"
mv -f "$OUT/tree/$base.deb" "$OUT/tree/$base.buildinfo" "$OUT/tree/$base.changes" "$OUT/"
rm -rf "$OUT/tree"
deb="$OUT/$base.deb"
log "built $deb in $((SECONDS - start))s"
echo "$deb"

if [ "$LINTIAN" = 1 ]; then
  log "lintian $deb"
  # Errors and warnings fail; info tags are shown. Overrides: packaging/debian/*.lintian-overrides.
  if ! lintian --display-info --fail-on error,warning --tag-display-limit 0 "$deb" >&2; then
    log "lintian found errors or warnings in $deb"
    exit 1
  fi
  log "lintian clean"
fi
}
main "$@"
