#!/usr/bin/env bash
# memcrab vs memcached 1.6, side by side, in the same run.
#
# Usage: scripts/bench-vs-memcached.sh [compare|percore|scaling|noise|all]   (default: all)
#   compare  workloads (a)-(f): memcrab vs memcached, alternating A/B/A/B
#   percore  the same with one core each: both servers -t 1 pinned to CPU 0, the
#            generator (1 thread) pinned to CPU 1 (PERCORE_WORKLOADS, default
#            "a b-pipe c d f"): the server's own speed per core, without the
#            generator and the server competing for the same cores
#   scaling  memcrab -t 1 vs -t 2 (and memcached -t 1 vs -t 2) on CPU-bound pipelined loads
#            (SCALE_WORKLOADS, default "scale scale-get scale-incr": memcrab-bench --bulk, see below)
#   noise    memcached vs a second memcached: the noise floor of the same procedure
# Environment: ROUNDS (5), DUR measured seconds (5), WARMUP seconds (1),
#   WORKLOADS (space list, default "a b-pipe b-mget c d e f"), NOISE_WORKLOADS
#   (default "a b-pipe c f"), GEN_THREADS (2), SCALE_WORKLOADS ("scale scale-get scale-incr"),
#   SCALE_GEN_THREADS (generator threads for scaling, 1), OUT (results dir),
#   MEMCRAB_BIN (default target/release/memcrab; point it at memcached to dry-run),
#   GEN_FLAGS (extra generator flags for every measured run, default
#   "--batch-send": the generator sends each event-loop pass's requests with
#   one io_uring submission, which costs it ~10 % less CPU per request against
#   either server; GEN_FLAGS= gives the plain one-write-per-request generator).
#
# Both servers get the same flags: -U 0 -l 127.0.0.1 -t 2 -m 1024 -c 4096
# (-c 4096 because memcached's default 1024 would refuse (e)'s 1,050 connections).
# Nothing is pinned: with 2 cores the generator and the server share both, and
# pinning either to one core starves the other. Throughput is therefore bounded
# by generator + server together; server CPU time per request (utime+stime
# from /proc/PID/stat over the measured window) is the fairest figure.
# Every figure is the median over ROUNDS; servers alternate within each round.
#
# Scaling: with generator cost g and server cost s per request on 2 shared
# cores, t2/t1 <= 2s/(s+g), so 1.8x needs g/s <= ~0.11. The scaling workloads
# therefore use memcrab-bench --bulk: batches over every key, pre-rendered
# once and sent from static buffers, each batch's reply compared byte for byte
# with the expected bytes (scale: 512 quiet `ms k 100 q` sets closed by `mn`,
# reply exactly `MN`, 4 batches in flight; scale-get: 256 `mg k v`, every
# value checked, 3 in flight; scale-incr: 512 quiet `ma k q` closed by `mn`,
# keys preloaded with "0", the least generator work per request of the three:
# ~20 request bytes and no reply bytes per increment). 4 connections (2 per
# server worker), 1 generator thread (a second one only adds generator CPU per
# request); the generator wakes once depth-1 replies are in (SO_RCVLOWAT).
# That costs ~0.01 (incr) / ~0.02 (sets) / ~0.05 (gets) us/request of
# generator CPU against ~0.17-0.25 us of server CPU. The table shows the ceiling 2*s1/(s2+g2) this implies and
# how many cores other work on the machine took during the runs (it takes
# them from the server, and the ratio with them). memcached's sets take its
# per-class LRU lock on every store and scale below 1x; memcrab's same-size
# overwrite in place takes no class lock.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-all}
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
WARMUP=${WARMUP:-1}
WORKLOADS=${WORKLOADS:-"a b-pipe b-mget c d e f"}
NOISE_WORKLOADS=${NOISE_WORKLOADS:-"a b-pipe c f"}
GEN_THREADS=${GEN_THREADS:-2}
SCALE_WORKLOADS=${SCALE_WORKLOADS:-"scale scale-get scale-incr"}
SCALE_GEN_THREADS=${SCALE_GEN_THREADS:-1}
PERCORE_WORKLOADS=${PERCORE_WORKLOADS:-"a b-pipe c d f"}
GEN_FLAGS=${GEN_FLAGS---batch-send}
# Command prefixes for the servers and the generator (per-core mode pins them).
SRV_PREFIX=()
GEN_PREFIX=()
GEN_T=$GEN_THREADS
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
OUT=${OUT:-target/bench-vs-memcached}
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"

echo "== building (release)" >&2
cargo build --release --bin memcrab --bin memcrab-bench >&2
BENCH=target/release/memcrab-bench
MEMCRAB=${MEMCRAB_BIN:-target/release/memcrab}

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME BIN THREADS -> sets SRV_PORT and SRV_PID
start_server() {
    local name=$1 bin=$2 threads=$3
    SRV_PORT=$(free_port)
    local extra=()
    [ "$(basename "$bin")" = memcached ] && extra=(-u root)
    "${SRV_PREFIX[@]}" "$bin" "${extra[@]}" -U 0 -l 127.0.0.1 -p "$SRV_PORT" -t "$threads" -m 1024 -c 4096 \
        >"$OUT/$name.log" 2>&1 &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$SRV_PORT") 2>/dev/null; then return 0; fi
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server $name ($bin) did not start; log:" >&2
    cat "$OUT/$name.log" >&2
    exit 1
}

stop_server() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Workload definitions: generator flags (without server, duration, label).
wl_args() {
    case $1 in
    a) echo "-c 50 -g 0.9 -n 100000 -v 100 --key-prefix a:" ;;
    b-pipe) echo "-c 50 -g 0.9 -n 100000 -v 100 --key-prefix a: -d 16" ;;
    b-mget) echo "-c 50 -g 0.9 -n 100000 -v 100 --key-prefix a: -k 16" ;;
    c) echo "-c 50 -g 0.1 -n 100000 -v 1024 --key-prefix c:" ;;
    # 4,000 x 100 KB = 400 MB: fits -m 1024 so hit ratios stay comparable.
    d) echo "-c 50 -g 0.5 -n 4000 -v 102400 --key-prefix d:" ;;
    e) echo "-c 50 -g 0.9 -n 100000 -v 100 --key-prefix a: --idle 1000" ;;
    f) echo "-c 50 -g 0.9 -n 100000 -v 100 --key-prefix a: -P meta" ;;
    # Scaling: bulk batches (see the header). scale-pipe is the old (a) with
    # 32-deep pipelining, kept for comparison: its generator costs ~0.3 us/req.
    scale) echo "--bulk set -P meta --batch 512 -c 4 -d 4 -n 100000 -v 100 --key-prefix s:" ;;
    scale-get) echo "--bulk get -P meta --batch 256 -c 4 -d 3 -n 100000 -v 100 --key-prefix a:" ;;
    scale-incr) echo "--bulk incr -P meta --batch 512 -c 4 -d 4 -n 100000 --key-prefix n:" ;;
    scale-pipe) echo "-c 50 -g 0.9 -n 100000 -v 100 --key-prefix a: -d 32" ;;
    *) echo "unknown workload $1" >&2; exit 1 ;;
    esac
}
wl_desc() {
    case $1 in
    a) echo "(a) 90:10, 100 B, 50 conns" ;;
    b-pipe) echo "(b) as (a), 16-deep pipeline" ;;
    b-mget) echo "(b) as (a), 16-key multi-get" ;;
    c) echo "(c) 10:90, 1 KB" ;;
    d) echo "(d) 50:50, 100 KB, 4k keys" ;;
    e) echo "(e) (a) + 1,000 idle conns" ;;
    f) echo "(f) meta mg/ms, as (a)" ;;
    scale) echo "bulk quiet sets (ms q + mn), 512/batch, 100 B" ;;
    scale-get) echo "bulk gets (mg v), 256/batch, 100 B" ;;
    scale-incr) echo "bulk quiet increments (ma q + mn), 512/batch" ;;
    scale-pipe) echo "as (a), 32-deep pipeline" ;;
    esac
}
# Which key set a workload reads (so each is preloaded once per server).
wl_keyset() {
    case $1 in
    c) echo c ;;
    d) echo d ;;
    scale) echo s ;;
    scale-incr) echo n ;;
    *) echo a ;;
    esac
}

declare -A PRELOADED=()
preload() { # name port workload
    local key="$1/$(wl_keyset "$3")"
    [ -n "${PRELOADED[$key]:-}" ] && return 0
    # Bulk sets write every key themselves.
    [ "$3" = scale ] && return 0
    # shellcheck disable=SC2046
    "$BENCH" -s "127.0.0.1:$2" $(wl_args "$3" | sed 's/--idle [0-9]*//; s/-P meta//') \
        -t "$GEN_T" --preload-only --label "preload-$1" >>"$OUT/runs.log"
    PRELOADED[$key]=1
}

# run_one GROUP WORKLOAD ROUND NAME PORT PID
run_one() {
    local line
    # shellcheck disable=SC2046
    line=$("${GEN_PREFIX[@]}" "$BENCH" -s "127.0.0.1:$5" $(wl_args "$2") $GEN_FLAGS -t "$GEN_T" -D "$DUR" -w "$WARMUP" \
        --server-pid "$6" --label "$4" | tee -a "$OUT/runs.log" | grep '^RESULT' || true)
    if [ -z "$line" ]; then
        line="RESULT label=$4 ops=0 clean=0 failed=1"
    fi
    line+=" load1=$(cut -d" " -f1 /proc/loadavg)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$line" >>"$RESULTS"
    echo "  [$1] $2 round $3 $4: $(echo "$line" | grep -o 'ops_per_s=[0-9]*') $(echo "$line" | grep -o 'p99_us=[0-9.]*') $(echo "$line" | grep -o 'server_cpu_us_per_op=[0-9.NA]*') $(echo "$line" | grep -o 'client_cpu_us_per_op=[0-9.]*') $(echo "$line" | grep -o 'clean=[01]') $(echo "$line" | grep -o 'load1=[0-9.]*')" >&2
}

# ab GROUP "WORKLOADS" NAME_A PORT_A PID_A NAME_B PORT_B PID_B
ab() {
    local group=$1 wls=$2 na=$3 pa=$4 ia=$5 nb=$6 pb=$7 ib=$8 wl r
    for wl in $wls; do
        preload "$na" "$pa" "$wl"
        preload "$nb" "$pb" "$wl"
        for r in $(seq "$ROUNDS"); do
            # Alternate which server goes first so drift does not favour one.
            if [ $((r % 2)) -eq 1 ]; then
                run_one "$group" "$wl" "$r" "$na" "$pa" "$ia"
                run_one "$group" "$wl" "$r" "$nb" "$pb" "$ib"
            else
                run_one "$group" "$wl" "$r" "$nb" "$pb" "$ib"
                run_one "$group" "$wl" "$r" "$na" "$pa" "$ia"
            fi
        done
    done
}

START=$(date +%s)
LOAD_BEFORE=$(cut -d" " -f1 /proc/loadavg)
if [ "$MODE" = compare ] || [ "$MODE" = all ]; then
    echo "== compare: memcrab vs memcached ($ROUNDS rounds x ${DUR}s)" >&2
    start_server memcrab "$MEMCRAB" 2; CR_PORT=$SRV_PORT CR_PID=$SRV_PID
    start_server memcached "$MEMCACHED" 2; MC_PORT=$SRV_PORT MC_PID=$SRV_PID
    ab compare "$WORKLOADS" memcrab "$CR_PORT" "$CR_PID" memcached "$MC_PORT" "$MC_PID"
    stop_server "$CR_PID"; stop_server "$MC_PID"
fi
if [ "$MODE" = percore ] || [ "$MODE" = all ]; then
    echo "== per core: -t 1 servers on CPU 0, generator (1 thread) on CPU 1" >&2
    PRELOADED=()
    GEN_T=1
    SRV_PREFIX=(taskset -c 0)
    GEN_PREFIX=(taskset -c 1)
    start_server memcrab-1core "$MEMCRAB" 1; CR_PORT=$SRV_PORT CR_PID=$SRV_PID
    start_server memcached-1core "$MEMCACHED" 1; MC_PORT=$SRV_PORT MC_PID=$SRV_PID
    ab percore "$PERCORE_WORKLOADS" memcrab-1core "$CR_PORT" "$CR_PID" memcached-1core "$MC_PORT" "$MC_PID"
    stop_server "$CR_PID"; stop_server "$MC_PID"
    SRV_PREFIX=()
    GEN_PREFIX=()
    GEN_T=$GEN_THREADS
fi
if [ "$MODE" = scaling ] || [ "$MODE" = all ]; then
    echo "== scaling: -t 1 vs -t 2 ($SCALE_WORKLOADS; $SCALE_GEN_THREADS generator thread(s))" >&2
    PRELOADED=()
    GEN_T=$SCALE_GEN_THREADS
    start_server memcrab-t1 "$MEMCRAB" 1; A_PORT=$SRV_PORT A_PID=$SRV_PID
    start_server memcrab-t2 "$MEMCRAB" 2; B_PORT=$SRV_PORT B_PID=$SRV_PID
    ab scaling-memcrab "$SCALE_WORKLOADS" memcrab-t1 "$A_PORT" "$A_PID" memcrab-t2 "$B_PORT" "$B_PID"
    stop_server "$A_PID"; stop_server "$B_PID"
    start_server memcached-t1 "$MEMCACHED" 1; A_PORT=$SRV_PORT A_PID=$SRV_PID
    start_server memcached-t2 "$MEMCACHED" 2; B_PORT=$SRV_PORT B_PID=$SRV_PID
    ab scaling-memcached "$SCALE_WORKLOADS" memcached-t1 "$A_PORT" "$A_PID" memcached-t2 "$B_PORT" "$B_PID"
    stop_server "$A_PID"; stop_server "$B_PID"
    GEN_T=$GEN_THREADS
fi
if [ "$MODE" = noise ] || [ "$MODE" = all ]; then
    echo "== noise floor: memcached vs memcached" >&2
    PRELOADED=()
    start_server memcached-A "$MEMCACHED" 2; A_PORT=$SRV_PORT A_PID=$SRV_PID
    start_server memcached-B "$MEMCACHED" 2; B_PORT=$SRV_PORT B_PID=$SRV_PID
    ab noise "$NOISE_WORKLOADS" memcached-A "$A_PORT" "$A_PID" memcached-B "$B_PORT" "$B_PID"
    stop_server "$A_PID"; stop_server "$B_PID"
fi
ELAPSED=$(($(date +%s) - START))
LOADS="$LOAD_BEFORE -> $(cut -d" " -f1 /proc/loadavg)"
MC_VERSION=$("$MEMCACHED" -V 2>/dev/null || echo memcached)

# ---- report: medians per (group, workload, server), ratios, markdown ----
DESCS=""
for wl in a b-pipe b-mget c d e f scale scale-get scale-incr scale-pipe; do DESCS+="$wl=$(wl_desc $wl);"; done
python3 - "$RESULTS" "$DESCS" "$ROUNDS" "$DUR" "$ELAPSED" "$LOADS" "$MC_VERSION" <<'EOF'
import sys, statistics, collections, os, platform, subprocess
path, descs, rounds, dur, elapsed, loads, mcver = sys.argv[1:8]
desc = dict(kv.split("=", 1) for kv in descs.split(";") if kv)
runs = collections.defaultdict(list)   # (group, wl, server) -> [dict]
order = []
for line in open(path):
    group, wl, rnd, server, res = line.rstrip("\n").split("\t")
    d = dict(kv.split("=", 1) for kv in res.split()[1:] if "=" in kv)
    runs[(group, wl, server)].append(d)
    if (group, wl) not in order:
        order.append((group, wl))

def med(group, wl, server, key):
    vals = []
    for d in runs.get((group, wl, server), []):
        try:
            vals.append(float(d[key]))
        except (KeyError, ValueError):
            pass
    return statistics.median(vals) if vals else None

def clean(group, wl, server):
    rs = runs.get((group, wl, server), [])
    return bool(rs) and all(d.get("clean") == "1" for d in rs)

def fmt(v, nd=0):
    return "n/a" if v is None else f"{v:,.{nd}f}"

def ratio(a, b, nd=2):
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.{nd}f}"

servers_of = collections.defaultdict(list)
for (g, w, s) in runs:
    if s not in servers_of[(g, w)]:
        servers_of[(g, w)].append(s)

cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print(f"\nMachine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; "
      f"{mcver}; {rounds} rounds x {dur}s, servers alternating, medians; nothing pinned except in the per-core table; total {elapsed}s; "
      f"1-min load average {loads} (other work on the machine shows up as noise).\n")

def table(group, a, b, title):
    rows = [(g, w) for (g, w) in order if g == group]
    if not rows:
        return
    print(f"### {title}\n")
    print(f"| workload | {a} ops/s | {b} ops/s | ratio | p50 µs {a} / {b} | p99 µs {a} / {b} | p99.9 µs {a} / {b} | CPU µs/op {a} / {b} | CPU ratio | hit % |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g, w in rows:
        m = lambda s, k: med(g, w, s, k)
        note = ""
        for s in (a, b):
            if not clean(g, w, s):
                note += f" ⚠{s} errors"
        print(f"| {desc.get(w, w)}{note} | {fmt(m(a,'ops_per_s'))} | {fmt(m(b,'ops_per_s'))} | "
              f"**{ratio(m(a,'ops_per_s'), m(b,'ops_per_s'))}** | "
              f"{fmt(m(a,'p50_us'))} / {fmt(m(b,'p50_us'))} | {fmt(m(a,'p99_us'))} / {fmt(m(b,'p99_us'))} | "
              f"{fmt(m(a,'p999_us'))} / {fmt(m(b,'p999_us'))} | "
              f"{fmt(m(a,'server_cpu_us_per_op'),2)} / {fmt(m(b,'server_cpu_us_per_op'),2)} | "
              f"**{ratio(m(a,'server_cpu_us_per_op'), m(b,'server_cpu_us_per_op'))}** | "
              f"{fmt((m(a,'hit_ratio') or 0)*100,1)} / {fmt((m(b,'hit_ratio') or 0)*100,1)} |")
    print()

table("compare", "memcrab", "memcached", "memcrab vs memcached (ratio = memcrab / memcached; CPU ratio < 1 is better)")
table("percore", "memcrab-1core", "memcached-1core", "Per core: memcrab vs memcached, both -t 1 pinned to CPU 0, generator (1 thread) pinned to CPU 1")
def scaling_table(groups):
    rows = [(g, w) for (g, w) in order if g in groups]
    if not rows:
        return
    print("### Scaling: -t 2 vs -t 1 (memcached beside for reference)\n")
    print("| server | workload | t1 ops/s | t2 ops/s | **t2/t1** | per round | server CPU µs/op t1 / t2 | "
          "generator CPU µs/op t1 / t2 | 2-core ceiling 2·s1/(s2+g2) | other work, cores t1 / t2 | 1-min load t1 / t2 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for g, w in rows:
        name = g.split("-", 1)[1]
        a, b = f"{name}-t1", f"{name}-t2"
        m = lambda s, k: med(g, w, s, k)
        s1, s2, g2 = m(a, "server_cpu_us_per_op"), m(b, "server_cpu_us_per_op"), m(b, "client_cpu_us_per_op")
        ceil = f"{2 * s1 / (s2 + g2):.2f}" if None not in (s1, s2, g2) and s2 + g2 > 0 else "n/a"
        note = "".join(f" ⚠{s} errors" for s in (a, b) if not clean(g, w, s))
        # Rounds pair up in order (the runs alternate within a round).
        per = ", ".join(ratio(float(y.get("ops_per_s", 0)), float(x.get("ops_per_s", 0)))
                        for x, y in zip(runs.get((g, w, a), []), runs.get((g, w, b), [])))
        print(f"| {name}{note} | {desc.get(w, w)} | {fmt(m(a,'ops_per_s'))} | {fmt(m(b,'ops_per_s'))} | "
              f"**{ratio(m(b,'ops_per_s'), m(a,'ops_per_s'))}** | {per} | {fmt(s1,3)} / {fmt(s2,3)} | "
              f"{fmt(m(a,'client_cpu_us_per_op'),3)} / {fmt(g2,3)} | {ceil} | "
              f"{fmt(m(a,'other_busy_cores'),2)} / {fmt(m(b,'other_busy_cores'),2)} | "
              f"{fmt(m(a,'load1'),2)} / {fmt(m(b,'load1'),2)} |")
    print()
    print("t2/t1 can reach 2x only if the server's CPU/op stays flat from t1 to t2 (no contention) and the\n"
          "generator's share g/s is small; the ceiling column is what 2 fully available cores would allow.\n"
          "'other work' is the machine's busy CPU (/proc/stat, steal included) minus server and generator,\n"
          "in cores: what other processes took from the run. The load average counts the run's own threads\n"
          "too (t1: ~2, t2: ~3).\n")

scaling_table(("scaling-memcrab", "scaling-memcached"))
table("noise", "memcached-A", "memcached-B", "Noise floor: memcached vs memcached (ratios should be ~1.00)")
bad = [(g, w, s) for (g, w, s) in runs if not clean(g, w, s)]
if bad:
    print("Runs with errors (see runs.log):", ", ".join(f"{g}/{w}/{s}" for g, w, s in bad))
EOF
