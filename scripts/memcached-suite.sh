#!/usr/bin/env bash
# Runs memcached 1.6's own test suite (t/*.t, perl) for the text protocol and
# the server against memcrab and against memcached, side by side.
#
# The suite is not part of this repository: it is fetched at run time from
# Debian's memcached source package (`apt-get source`, using a private apt
# configuration under target/ so the system's sources are not changed) and
# run unmodified through a small `memcached-debug` shim that starts the
# server under test.
#
#   scripts/memcached-suite.sh                 # all listed .t files
#   scripts/memcached-suite.sh getset cas      # just these
#
# Prints one line per file (tests passed / planned for each server) and exits
# non-zero when memcrab fails a file that memcached passes.
# Needs: perl, apt-get (Debian), memcached; about 5-8 minutes for the full list.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$TARGET_DIR/memcached-suite"
MEMCRAB="${MEMCRAB_BIN:-$TARGET_DIR/debug/memcrab}"
MEMCACHED="${MEMCACHED_BIN:-/usr/bin/memcached}"
PER_FILE_TIMEOUT="${PER_FILE_TIMEOUT:-120}"

# Text protocol and server behaviour. Left out: binary/SASL/TLS/extstore/proxy/
# meta (other suites), and issue_67.t (binds the default port 11211).
DEFAULT_FILES=(getset cas incrdecr noreply flush-all expirations getandtouch flags
    bogus-commands line-lengths malicious-commands 64bit stats touch multiversioning
    item_size_max dash-M evictions maxconns conn-limits idle-timeout quit shutdown
    stats-conns dyn-maxbytes unixsocket lru chunked-items slabs-reassign2 00-startup
    issue_104 issue_108 issue_14 issue_140 issue_152 issue_163 issue_183 issue_192
    issue_22 issue_260 issue_29 issue_3 issue_41 issue_42 issue_50 issue_61 issue_68 issue_70)
# Differences that are deliberate or test memcached internals, reported but
# not counted as failures:
#   flush-all  test 27 asserts memcached's imprecision under -C (memcrab flushes exactly)
#   64bit      relies on memcached's T_MEMD_* test-only environment hooks
#   issue_50   needs the binary protocol (a later wave)
#   issue_163, issue_22  read memcached's class ids (`items:31:*`); memcrab's
#              classes are three per -f step, so the same item is in another class
#              (slabs_reassign.t and slabs-reassign-chunked.t, not listed, move
#              pages by memcached's class ids too)
#   dyn-maxbytes 41/45, issue_22 84  expect evictions/new pages where memcrab's
#              tighter chunks still hold the items (45 x 67 KB in -m 3, memcached 36)
#   conn-limits  memcached's per-thread response-object budget (`-o read_buf_mem_limit`,
#              a 500-key multi-get of misses must fail): accepted, not implemented
KNOWN_DIFF=" flush-all 64bit issue_50 issue_163 issue_22 dyn-maxbytes conn-limits "
FILES=("$@")
[ "${#FILES[@]}" -gt 0 ] || FILES=("${DEFAULT_FILES[@]}")

[ -x "$MEMCRAB" ] || (cd "$ROOT" && cargo build --bins)
command -v perl >/dev/null || { echo "perl is needed" >&2; exit 1; }

# ---- fetch the suite once
mkdir -p "$WORK"
SRC=$(ls -d "$WORK"/memcached-1.6*/ 2>/dev/null | head -1 || true)
if [ -z "$SRC" ]; then
    APT="$WORK/apt"
    mkdir -p "$APT/lists/partial" "$APT/parts"
    cat >"$APT/parts/src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    OPTS=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$APT/parts"
        -o "Dir::State::Lists=$APT/lists")
    timeout 300 apt-get "${OPTS[@]}" update -qq
    (cd "$WORK" && timeout 300 apt-get "${OPTS[@]}" source --download-only -qq memcached)
    tar -C "$WORK" -xf "$WORK"/memcached_*.orig.tar.*
    SRC=$(ls -d "$WORK"/memcached-1.6*/ | head -1)
fi

# ---- run directory: the suite expects ./t and ./memcached-debug, ./timedrun
RUN="$WORK/run"
mkdir -p "$RUN"
ln -sfn "$SRC/t" "$RUN/t"
cat >"$RUN/memcached-debug" <<'EOF'
#!/usr/bin/env bash
# Starts the server under test; drops -o relaxed_privileges, which only
# memcached's own test builds understand.
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = "-o" ] && [ "${2:-}" = "relaxed_privileges" ]; then shift 2; continue; fi
    args+=("$1"); shift
done
exec "$SUITE_SERVER" "${args[@]}"
EOF
printf '#!/bin/sh\nshift\nexec "$@"\n' >"$RUN/timedrun"
chmod +x "$RUN/memcached-debug" "$RUN/timedrun"

# One .t file against one server: prints "passed/planned".
run_one() {
    local server=$1 file=$2 log=$3 plan ok
    (cd "$RUN" && SUITE_SERVER="$server" timeout "$PER_FILE_TIMEOUT" perl "t/$file.t") >"$log" 2>&1 || true
    plan=$(grep -m1 -o '^1\.\.[0-9]*' "$log" | cut -c4- || true)
    ok=$(grep -c '^ok' "$log" || true)
    echo "${ok:-0}/${plan:-?}"
}

mkdir -p "$WORK/logs"
printf '%-22s %-14s %-14s\n' "file" "memcached" "memcrab"
regressions=()
for f in "${FILES[@]}"; do
    a=$(run_one "$MEMCACHED" "$f" "$WORK/logs/$f.memcached.log")
    b=$(run_one "$MEMCRAB" "$f" "$WORK/logs/$f.memcrab.log")
    mark=""
    # A file passes when every planned test passed (plans can differ: some
    # .t files plan by how many items fit).
    if [ "${a%/*}" = "${a#*/}" ] && [ "${b%/*}" != "${b#*/}" ]; then
        if [[ "$KNOWN_DIFF" == *" $f "* ]]; then
            mark="  (known difference)"
        else
            mark="  <- memcrab differs"
            regressions+=("$f")
        fi
    fi
    printf '%-22s %-14s %-14s%s\n' "$f" "$a" "$b" "$mark"
done
echo "logs: $WORK/logs"
if [ "${#regressions[@]}" -gt 0 ]; then
    echo "memcrab fails files memcached passes: ${regressions[*]}" >&2
    exit 1
fi
