#!/bin/bash
# Memory efficiency side by side: memcached 1.6 and memcrab with the same -m.
#   scripts/memory-vs-memcached.sh [limit_mb=64] [shift_seconds=25] [zipf_ops=2000000]
# Phases (fresh servers for each, both on free 127.0.0.1 ports):
#   fill  : log-uniform 50 B - 4 KB values (fixed seed) until 4x -m written; read all back
#   zipf  : zipf(0.99) get-or-set-on-miss over 5x what fits; hit ratio of the second half
#   shift : fill with 100 B values, then 10 KB values worth 2x -m over N s;
#           share of the newest quarter of 10 KB items that reads back
# Prints both servers' numbers and memcrab/memcached ratios. Extra server
# flags for both: MEMTEST_FLAGS="-f 1.1" scripts/memory-vs-memcached.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-64}
SHIFT_SECS=${2:-25}
ZIPF_OPS=${3:-2000000}
FLAGS=${MEMTEST_FLAGS:-}
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}

cargo build --release --quiet --bin memcrab --bin memcrab-memtest
MEMCRAB=target/release/memcrab
TOOL=target/release/memcrab-memtest
OUT=$(mktemp -d)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start <name>: starts the server, sets PID and PORT
start() {
  PORT=$(free_port)
  if [ "$1" = memcached ]; then
    # shellcheck disable=SC2086
    "$MEMCACHED" -u root -p "$PORT" -l 127.0.0.1 -U 0 -m "$LIMIT" $FLAGS &
  else
    # shellcheck disable=SC2086
    "$MEMCRAB" -p "$PORT" -l 127.0.0.1 -U 0 -m "$LIMIT" $FLAGS &
  fi
  PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "$1 did not start" >&2; exit 1
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; }

run_phase() { # phase server extra
  start "$2"
  timeout 120 "$TOOL" "$1" "$PORT" "$PID" "$LIMIT" ${3:-} > "$OUT/$1.$2"
  stop
}

for phase in fill zipf shift; do
  extra=""
  [ $phase = zipf ] && extra=$ZIPF_OPS
  [ $phase = shift ] && extra=$SHIFT_SECS
  for server in memcached memcrab; do
    echo "== $phase on $server" >&2
    run_phase $phase $server "$extra"
  done
done

python3 - "$OUT" "$LIMIT" <<'PY'
import sys, os
out, limit = sys.argv[1], int(sys.argv[2])
def load(p):
    d = {}
    for l in open(os.path.join(out, p)):
        k, _, v = l.strip().partition("=")
        d[k] = v
    return d
rows = [
    ("fill", ["written", "retained", "retained_value_mb", "bytes", "evictions", "peak_rss_mb"]),
    ("zipf", ["keyspace", "hit_ratio", "evictions", "peak_rss_mb"]),
    ("shift", ["big_written", "newest_quarter", "newest_quarter_kept", "newest_quarter_pct", "slabs_moved", "peak_rss_mb"]),
]
print(f"memory-vs-memcached: -m {limit}")
print(f"{'phase':6} {'metric':22} {'memcached':>12} {'memcrab':>12} {'ratio':>8}")
for phase, keys in rows:
    a, b = load(f"{phase}.memcached"), load(f"{phase}.memcrab")
    for k in keys:
        x, y = a.get(k, "-"), b.get(k, "-")
        try:
            r = f"{float(y) / float(x):.3f}" if float(x) else "-"
        except ValueError:
            r = "-"
        print(f"{phase:6} {k:22} {x:>12} {y:>12} {r:>8}")
ha, hb = float(load("zipf.memcached")["hit_ratio"]), float(load("zipf.memcrab")["hit_ratio"])
print(f"zipf hit ratio difference: {100*(hb-ha):+.2f} points")
peak = max(float(load(f"{p}.memcrab")["peak_rss_mb"]) for p in ("fill", "zipf", "shift"))
print(f"memcrab peak RSS {peak:.1f} MB (limit + 15 = {limit + 15} MB)")
PY
