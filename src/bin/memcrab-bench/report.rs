//! Output: a readable summary and one `RESULT key=value …` line, plus the
//! CPU-time samples (server from /proc/PID/stat, generator from getrusage).

use crate::args::Args;
use crate::stats::ThreadStats;

/// CPU seconds (utime + stime) of a process, from /proc/PID/stat.
pub fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, so
    // utime (14) and stime (15) are the 12th and 13th after ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let stt: f64 = f.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as f64 } else { 100.0 };
    Some((ut + stt) / tck)
}

/// Busy CPU seconds of the whole machine (all cores; steal counts as busy:
/// the hypervisor gave that time to someone else), from /proc/stat.
fn machine_busy_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user).
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| f.get(i))
        .sum::<f64>();
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let tck = if tck > 0 { tck as f64 } else { 100.0 };
    Some(busy / tck)
}

/// CPU seconds this process has used (all threads).
fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[derive(Default)]
pub struct CpuWindow {
    server: Option<(f64, f64)>,
    client: (f64, f64),
    machine: Option<(f64, f64)>,
}

impl CpuWindow {
    pub fn begin(&mut self, pid: Option<u32>) {
        self.client.0 = self_cpu_secs();
        self.server = pid.and_then(proc_cpu_secs).map(|c| (c, c));
        self.machine = machine_busy_secs().map(|c| (c, c));
    }
    pub fn end(&mut self, pid: Option<u32>) {
        self.client.1 = self_cpu_secs();
        if let (Some(s), Some(c)) = (self.server.as_mut(), pid.and_then(proc_cpu_secs)) {
            s.1 = c;
        }
        if let (Some(m), Some(c)) = (self.machine.as_mut(), machine_busy_secs()) {
            m.1 = c;
        }
    }
}

pub struct Report<'a> {
    pub label: &'a str,
    pub args: &'a Args,
    pub st: &'a ThreadStats,
    pub elapsed: f64,
    pub preload_s: Option<f64>,
    pub preload_errors: u64,
    pub idle_ok: usize,
    pub cpu: CpuWindow,
}

impl Report<'_> {
    pub fn clean(&self) -> bool {
        let s = self.st;
        s.errors
            + s.bad_values
            + s.proto_errors
            + s.conn_errors
            + s.unrecorded_errors
            + self.preload_errors
            == 0
            && self.idle_ok == self.args.idle
    }

    pub fn print(&self) {
        let s = self.st;
        let a = self.args;
        if a.preload_only {
            println!(
                "preloaded {} keys ({} B values) in {:.2}s, errors={}",
                a.keys,
                a.value_size,
                self.preload_s.unwrap_or(0.0),
                self.preload_errors
            );
            println!(
                "RESULT label={} preload_keys={} preload_s={:.3} preload_errors={}",
                self.label,
                a.keys,
                self.preload_s.unwrap_or(0.0),
                self.preload_errors
            );
            return;
        }
        let el = self.elapsed.max(1e-9);
        let ops_s = s.ops as f64 / el;
        let keys_s = (s.get_keys + s.sets) as f64 / el;
        let hit = if s.get_keys > 0 {
            s.hits as f64 / s.get_keys as f64
        } else {
            0.0
        };
        let q = |p: f64| s.hist.value_at_quantile(p) as f64 / 1000.0;
        let (p50, p99, p999, max) = (q(0.5), q(0.99), q(0.999), s.hist.max() as f64 / 1000.0);
        let per_op = |c: f64| {
            if s.ops > 0 {
                c * 1e6 / s.ops as f64
            } else {
                0.0
            }
        };
        let srv = self.cpu.server.map(|(b, e)| e - b);
        let cli = self.cpu.client.1 - self.cpu.client.0;
        match a.bulk {
            Some(op) => println!(
                "{}: {} {:?} bulk {:?} batch={} conns={} depth={} batches keys={} value={}B idle={}",
                self.label,
                a.server,
                a.protocol,
                op,
                a.batch,
                a.conns,
                a.depth,
                a.keys,
                a.value_size,
                a.idle
            ),
            None => println!(
                "{}: {} {:?} conns={} depth={} mget={} get_ratio={} keys={} dist={} value={}B idle={}",
                self.label,
                a.server,
                a.protocol,
                a.conns,
                a.depth,
                a.mget,
                a.get_ratio,
                a.keys,
                a.dist,
                a.value_size,
                a.idle
            ),
        }
        println!(
            "  {:.0} req/s ({:.0} keys/s) over {:.2}s: {} gets, {} sets, hit ratio {:.4}",
            ops_s, keys_s, el, s.gets, s.sets, hit
        );
        let per = if a.bulk.is_some() { " (per batch)" } else { "" };
        println!("  latency{per} us: p50 {p50:.1}  p99 {p99:.1}  p99.9 {p999:.1}  max {max:.1}");
        if let Some(c) = srv {
            println!(
                "  server cpu {:.3}s = {:.2} us/req; generator cpu {:.2} us/req",
                c,
                per_op(c),
                per_op(cli)
            );
        }
        // Cores busy with anything but this server and this generator.
        let other = self
            .cpu
            .machine
            .map(|(b, e)| ((e - b) - srv.unwrap_or(0.0) - cli).max(0.0) / el);
        if let Some(o) = other {
            println!("  other work on the machine: {o:.2} cores busy (incl. steal)");
        }
        println!(
            "  errors {} bad_values {} proto_errors {} conn_errors {} (warm-up/preload errors {}) idle_ok {}/{}",
            s.errors,
            s.bad_values,
            s.proto_errors,
            s.conn_errors,
            s.unrecorded_errors + self.preload_errors,
            self.idle_ok,
            a.idle
        );
        if let Some(e) = &s.first_error {
            println!("  first error: {e}");
        }
        println!(
            "RESULT label={} ops={} elapsed_s={:.3} ops_per_s={:.0} keys_per_s={:.0} gets={} sets={} \
             hit_ratio={:.4} p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} server_cpu_s={} \
             server_cpu_us_per_op={} client_cpu_us_per_op={:.3} errors={} bad_values={} \
             proto_errors={} conn_errors={} other_errors={} idle_ok={} other_busy_cores={} clean={}",
            self.label,
            s.ops,
            el,
            ops_s,
            keys_s,
            s.gets,
            s.sets,
            hit,
            p50,
            p99,
            p999,
            max,
            srv.map_or("NA".into(), |c| format!("{c:.3}")),
            srv.map_or("NA".into(), |c| format!("{:.3}", per_op(c))),
            per_op(cli),
            s.errors,
            s.bad_values,
            s.proto_errors,
            s.conn_errors,
            s.unrecorded_errors + self.preload_errors,
            self.idle_ok,
            other.map_or("NA".into(), |o| format!("{o:.2}")),
            u8::from(self.clean())
        );
    }
}
