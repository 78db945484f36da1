//! Server clock: coarse "relative time" in seconds since the process started,
//! like memcached's `current_time`. Items store 32-bit relative times, which
//! keeps headers small; a ticker thread advances the clock so hot paths read
//! one atomic instead of calling `SystemTime::now()`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Relative time: seconds since `process_started()`. 0 means "never" for exptimes.
pub type RelTime = u32;

/// memcached treats exptimes above 30 days as absolute unix timestamps.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

static STARTED: AtomicU64 = AtomicU64::new(0);
static NOW: AtomicU32 = AtomicU32::new(2);
static INIT: Once = Once::new();

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Starts the ticker (idempotent). Like memcached, the epoch is set two seconds
/// in the past so relative time 0 and 1 never collide with "now".
pub fn init() {
    INIT.call_once(|| {
        STARTED.store(unix_now().saturating_sub(2), Ordering::Relaxed);
        NOW.store(2, Ordering::Relaxed);
        std::thread::Builder::new()
            .name("clock".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(100));
                tick();
            })
            .ok();
    });
}

fn tick() {
    let started = STARTED.load(Ordering::Relaxed);
    let rel = unix_now().saturating_sub(started).min(u32::MAX as u64) as u32;
    // Never go backwards even if the wall clock does.
    NOW.fetch_max(rel, Ordering::Relaxed);
}

/// Current relative time in seconds.
#[inline]
pub fn now() -> RelTime {
    NOW.load(Ordering::Relaxed)
}

/// Unix time at which relative time 0 happened.
pub fn process_started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

/// Current unix time as the server sees it (for `stats time`).
pub fn unix_time() -> u64 {
    process_started() + now() as u64
}

/// Converts a protocol exptime to relative time, following memcached:
/// 0 = never, negative = already expired, <= 30 days = relative,
/// larger = absolute unix time.
pub fn exptime_to_rel(exptime: i64) -> RelTime {
    if exptime == 0 {
        return 0;
    }
    if exptime < 0 {
        return 1; // in the past: expired immediately
    }
    if exptime > REALTIME_MAXDELTA {
        let started = process_started() as i64;
        if exptime <= started {
            return 1;
        }
        return (exptime - started).min(u32::MAX as i64) as RelTime;
    }
    (exptime + now() as i64).min(u32::MAX as i64) as RelTime
}

/// Is an item with this relative exptime expired at `now`?
#[inline]
pub fn is_expired(exptime: RelTime, now: RelTime) -> bool {
    exptime != 0 && exptime <= now
}

/// Seconds of life left for `exptime` (-1 for "never"), as meta `t` reports it.
pub fn ttl_remaining(exptime: RelTime, now: RelTime) -> i64 {
    if exptime == 0 {
        -1
    } else {
        (exptime as i64 - now as i64).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptime_conversion() {
        init();
        assert_eq!(exptime_to_rel(0), 0);
        assert_eq!(exptime_to_rel(-1), 1);
        let n = now();
        assert_eq!(exptime_to_rel(10), n + 10);
        let abs = (process_started() + 100) as i64;
        assert_eq!(exptime_to_rel(abs), 100);
        assert_eq!(exptime_to_rel(REALTIME_MAXDELTA + 1), 1);
        assert!(is_expired(1, n));
        assert!(!is_expired(0, n));
    }
}
