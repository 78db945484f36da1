#!/usr/bin/env bash
# The test command (README): builds memcrab, runs every Rust test (`cargo
# test`), then the client-level tests: pymemcache + pytest in a venv, and
# `memccapable -a` from libmemcached-tools against a memcrab this script starts.
#
#   scripts/test.sh                       # everything against memcrab
#   MEMCRAB_TEST_SERVER=memcached scripts/test.sh   # same tests against memcached 1.6
#   MEMCRAB_PROFILE=release scripts/test.sh         # client tests on a release build
#
# Non-interactive (CI=true is fine), exits non-zero on any failure, and every
# step runs under a time limit. Only the processes this script starts are
# stopped, by PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROFILE="${MEMCRAB_PROFILE:-debug}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${MEMCRAB_VENV:-$TARGET_DIR/test-venv}"
STARTED_PIDS=()

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SECONDS=0
step() { printf '\n==> [%4ss] %s\n' "$SECONDS" "$*"; }
die() { echo "test.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on 127.0.0.1:$1 (10 s), or the process $2 died.
wait_listening() {
    local port=$1 pid=$2 i
    for i in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---------------------------------------------------------------- build + Rust
step "cargo build ($PROFILE)"
if [ "$PROFILE" = release ]; then
    timeout 1200 cargo build --release --bins
fi
timeout 1200 cargo build --all-targets

step "cargo test"
if [ "${MEMCRAB_TEST_SERVER:-}" = memcached ]; then
    # Against the reference server, tests parked for memcrab bugs run too.
    timeout 1200 cargo test -- --include-ignored
else
    timeout 1200 cargo test
fi

if [ "${MEMCRAB_TEST_SERVER:-}" = memcached ]; then
    BIN=/usr/bin/memcached
    SERVER_EXTRA=(-u root)
else
    BIN="$TARGET_DIR/$PROFILE/memcrab"
    SERVER_EXTRA=()
fi
[ -x "$BIN" ] || die "server binary $BIN not found"

# ---------------------------------------------------------------- pymemcache
step "python venv with pymemcache + pytest ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
    timeout 300 python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
fi
if ! "$VENV/bin/python" -c 'import pymemcache, pytest' 2>/dev/null; then
    timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        'pymemcache==4.0.0' 'pytest>=7,<10'
fi

step "pytest tests/python against $BIN"
MEMCRAB_BIN="$BIN" timeout 600 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/python

# ---------------------------------------------------------------- memccapable
step "memccapable -a against $BIN"
command -v memccapable >/dev/null || die "memccapable not found (apt-get install libmemcached-tools)"
PORT=$(free_port)
"$BIN" -p "$PORT" -l 127.0.0.1 -U 0 "${SERVER_EXTRA[@]}" &
SERVER_PID=$!
STARTED_PIDS+=("$SERVER_PID")
wait_listening "$PORT" "$SERVER_PID" || die "server did not start on port $PORT"
# Make sure the listener is the process we started (not something that
# grabbed the port between free_port and the server's bind).
LISTENER_PID=$(python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"stats\r\n")
data = b""
while not data.endswith(b"END\r\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(next((l.split()[2].decode() for l in data.split(b"\r\n") if l.startswith(b"STAT pid ")), ""))
PY
)
[ "$LISTENER_PID" = "$SERVER_PID" ] || die "port $PORT answered with pid '$LISTENER_PID', not our server $SERVER_PID"

set +e
OUT=$(timeout 120 memccapable -h 127.0.0.1 -p "$PORT" -a -t 10 2>&1)
RC=$?
set -e
echo "$OUT"
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true

# memcached 1.6.18 passes every ascii test; memcrab must pass the same set.
MISSING=()
while IFS= read -r name; do
    [ -z "$name" ] && continue
    grep -Eq "^${name} +\[pass\]" <<<"$OUT" || MISSING+=("$name")
done < "$ROOT/scripts/memccapable-ascii.expected"
if [ "${#MISSING[@]}" -gt 0 ]; then
    printf 'memccapable: not passed: %s\n' "${MISSING[@]}" >&2
    die "memccapable -a failed (exit $RC)"
fi
[ "$RC" -eq 0 ] || die "memccapable exited $RC"

step "all tests passed"
