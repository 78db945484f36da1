//! memcrab-bench: a purpose-built load generator for memcached-compatible
//! servers (memcrab, memcached). Closed loop: N connections spread over a few
//! threads, each thread one mio event loop, each connection keeping `depth`
//! requests in flight. Every reply is parsed and checked; results are printed
//! for people and as one `RESULT key=value …` line for scripts.
//!
//! Modules: `args` (flags), `workload` (keys, distributions, request bytes),
//! `reply` (reply framing and checks), `conn` (one connection's I/O cycle),
//! `runner` (threads and the event loop), `stats` (counters, histograms),
//! `report` (CPU sampling and output), `bulk` (pre-rendered batches checked
//! byte for byte: the cheap load for CPU-bound server measurements).

mod args;
mod bulk;
mod conn;
mod reply;
mod report;
mod runner;
mod stats;
mod workload;

use args::Args;
use clap::Parser;
use runner::Shared;
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

fn main() {
    let a = Args::parse();
    if let Err(e) = a.validate() {
        eprintln!("memcrab-bench: {e}");
        std::process::exit(64);
    }
    match run(&a) {
        Ok(clean) => std::process::exit(if clean { 0 } else { 1 }),
        Err(e) => {
            eprintln!("memcrab-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Opens `n` connections that each answer one `version` and then stay idle.
fn open_idle(addr: SocketAddr, n: usize) -> (Vec<std::net::TcpStream>, usize) {
    let mut socks = Vec::with_capacity(n);
    let mut ok = 0;
    for _ in 0..n {
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 64];
        if s.write_all(b"version\r\n").is_ok() {
            if let Ok(k) = s.read(&mut buf) {
                if buf[..k].starts_with(b"VERSION ") {
                    ok += 1;
                }
            }
        }
        socks.push(s);
    }
    (socks, ok)
}

/// Returns Ok(true) when the run saw no errors of any kind.
fn run(a: &Args) -> Result<bool, String> {
    let addr = a
        .server
        .to_socket_addrs()
        .map_err(|e| format!("bad --server {}: {e}", a.server))?
        .next()
        .ok_or("no address for --server")?;
    let threads = a.threads.min(a.conns);
    let spec = workload::Spec::new(a);
    let picker = workload::KeyPicker::new(a.dist()?, a.keys);
    let bulk = a
        .bulk
        .filter(|_| !a.preload_only)
        .map(|op| bulk::Pool::new(&spec, op, a.batch, a.seed));
    let sh = Arc::new(Shared {
        bulk,
        spec,
        picker,
        addr,
        depth: a.depth,
        batch_send: a.batch_send,
        preload: a.preload || a.preload_only,
        preload_only: a.preload_only,
        preload_next: AtomicU64::new(0),
        preload_errors: AtomicU64::new(0),
        ready: Barrier::new(threads + 1),
        preloaded: Barrier::new(threads + 1),
        timeline: OnceLock::new(),
        go: Barrier::new(threads + 1),
        measured: AtomicU64::new(0),
        max_ops: a.max_ops,
        stop: AtomicBool::new(false),
        stopped_at: OnceLock::new(),
    });
    let mut handles = Vec::new();
    for t in 0..threads {
        let n = a.conns / threads + usize::from(t < a.conns % threads);
        let sh = Arc::clone(&sh);
        let seed = a.seed ^ ((t as u64 + 1) << 40);
        handles.push(std::thread::spawn(move || runner::thread_main(sh, n, seed)));
    }
    sh.ready.wait();
    let t_pre = Instant::now();
    sh.preloaded.wait();
    let preload_s = t_pre.elapsed().as_secs_f64();
    let preload_errors = sh.preload_errors.load(Ordering::Relaxed);

    let mut idle = (Vec::new(), 0);
    if !a.preload_only {
        idle = open_idle(addr, a.idle);
        let start = Instant::now();
        let w0 = start + Duration::from_secs_f64(a.warmup);
        let window = conn::Window {
            start: w0,
            end: w0 + Duration::from_secs_f64(a.duration),
        };
        let _ = sh.timeline.set((start, window));
        sh.go.wait();
    }

    let mut cpu = report::CpuWindow::default();
    if !a.preload_only {
        let (_, w) = *sh.timeline.get().ok_or("timeline")?;
        sleep_until(w.start, &sh.stop);
        cpu.begin(a.server_pid);
        loop {
            let now = Instant::now();
            if now >= w.end || sh.stop.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(
                w.end
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(10)),
            );
        }
        cpu.end(a.server_pid);
    }

    let mut total = stats::ThreadStats::new();
    let mut thread_errors = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(st)) => total.merge(&st),
            Ok(Err(e)) => thread_errors.push(e),
            Err(_) => thread_errors.push("generator thread panicked".into()),
        }
    }
    drop(idle.0);
    if !thread_errors.is_empty() {
        return Err(thread_errors.join("; "));
    }
    let elapsed = match (sh.timeline.get(), sh.stopped_at.get()) {
        (Some((_, w)), Some(&stop)) => stop.saturating_duration_since(w.start).as_secs_f64(),
        (Some((_, w)), None) => (w.end - w.start).as_secs_f64(),
        _ => 0.0,
    };
    let r = report::Report {
        label: &a.label,
        args: a,
        st: &total,
        elapsed,
        preload_s: if sh.preload { Some(preload_s) } else { None },
        preload_errors,
        idle_ok: idle.1,
        cpu,
    };
    r.print();
    Ok(r.clean())
}

fn sleep_until(t: Instant, stop: &AtomicBool) {
    while Instant::now() < t && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(
            t.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(10)),
        );
    }
}
