//! The slab arena asks for transparent huge pages (memcrab's `-o hugepages`,
//! on by default) and `-o no_hugepages` stops it. Checked from /proc: the
//! server's `AnonHugePages` after values are stored, or, when the kernel
//! could not find a free 2 MB page, its own count of huge page faults that
//! fell back to small pages.

mod common;
use common::*;

/// The bracketed THP mode: "always", "madvise" or "never" (None if absent).
fn thp_mode() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = s.find('[')?;
    let end = s[start..].find(']')?;
    Some(s[start + 1..start + end].to_string())
}

fn anon_huge_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("AnonHugePages:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn thp_fault_fallbacks() -> u64 {
    let s = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("thp_fault_fallback "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Stores 40 values of 100 KB (4 MB of slab pages) and reads one back.
fn fill(s: &Server) {
    let mut c = s.connect();
    set_many(&mut c, "big:", 0..40, 100 * 1024);
    let (_, v) = c.get("big:7").expect("stored value");
    assert_eq!(v, vec![b'v'; 100 * 1024]);
}

#[test]
fn slab_memory_uses_huge_pages_unless_told_not_to() {
    if against_memcached() {
        return;
    }
    let mode = thp_mode();
    let fallbacks_before = thp_fault_fallbacks();
    let huge = Server::start(&["-m", "64"]);
    fill(&huge);
    let small = Server::start(&["-m", "64", "-o", "no_hugepages"]);
    fill(&small);
    match mode.as_deref() {
        Some("always") | Some("madvise") => {
            let got = anon_huge_kib(huge.pid());
            assert!(
                got >= 2048 || thp_fault_fallbacks() > fallbacks_before,
                "THP {mode:?}: the arena got no huge page ({got} KiB) and the kernel \
                 recorded no fallback, so it was never asked"
            );
        }
        _ => eprintln!("THP is {mode:?} here: only storage was checked"),
    }
    if mode.as_deref() == Some("madvise") {
        assert_eq!(
            anon_huge_kib(small.pid()),
            0,
            "no_hugepages: nothing was advised"
        );
    }
}
