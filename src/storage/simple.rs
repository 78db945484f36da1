//! Placeholder engine: sharded hash maps with a per-shard LRU (ordered by an
//! access sequence number) and per-shard byte budgets summing to `-m`.
//! Correct and thread-safe, but it allocates per item; the slab engine
//! replaces it behind the same API.

use super::*;
use crate::clock::{self, is_expired};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 64;
/// Rough per-item overhead charged against the limit, like memcached's header.
const ITEM_OVERHEAD: usize = 56;

struct Entry {
    value: Vec<u8>,
    meta: ItemMeta,
    seq: u64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Box<[u8]>, Entry>,
    lru: BTreeMap<u64, Box<[u8]>>,
    seq: u64,
    bytes: usize,
}

/// A read-only view of an item while the store holds it for the caller.
pub struct ItemView<'a> {
    pub key: &'a [u8],
    pub meta: ItemMeta,
    value: &'a [u8],
}

impl<'a> ItemView<'a> {
    pub fn value_len(&self) -> usize {
        self.value.len()
    }
    /// The value as contiguous pieces (one for small items, several for chained ones).
    pub fn value_parts(&self) -> impl Iterator<Item = &'a [u8]> {
        std::iter::once(self.value)
    }
    pub fn append_value_to(&self, out: &mut Vec<u8>) {
        for p in self.value_parts() {
            out.extend_from_slice(p);
        }
    }
}

pub struct Store {
    cfg: StoreConfig,
    shards: Vec<Mutex<Shard>>,
    shard_limit: AtomicU64,
    cas: AtomicU64,
    flush_before: AtomicU64,
    stats: Mutex<StoreStats>,
}

fn charge(key: &[u8], value_len: usize) -> usize {
    key.len() + value_len + ITEM_OVERHEAD
}

fn hash(key: &[u8]) -> u64 {
    // FNV-1a: fine for a placeholder.
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in key {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl Shard {
    fn touch_lru(&mut self, key: &[u8]) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.map.get_mut(key) {
            if let Some(k) = self.lru.remove(&e.seq) {
                self.lru.insert(seq, k);
            }
            e.seq = seq;
        }
    }
    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        self.lru.remove(&e.seq);
        self.bytes -= charge(key, e.value.len());
        Some(e)
    }
}

impl Store {
    pub fn new(cfg: StoreConfig) -> Store {
        clock::init();
        let shard_limit = (cfg.memory_limit / SHARDS) as u64;
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_limit: AtomicU64::new(shard_limit),
            cas: AtomicU64::new(0),
            flush_before: AtomicU64::new(0),
            stats: Mutex::new(StoreStats {
                limit_maxbytes: cfg.memory_limit as u64,
                ..Default::default()
            }),
            cfg,
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    fn shard(&self, key: &[u8]) -> &Mutex<Shard> {
        &self.shards[(hash(key) as usize) % SHARDS]
    }

    fn next_cas(&self) -> u64 {
        if self.cfg.use_cas {
            self.cas.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        }
    }

    /// Drops the item if it is expired or flushed; returns true if it is live.
    fn live(&self, shard: &mut Shard, key: &[u8], now: RelTime) -> bool {
        let Some(e) = shard.map.get(key) else {
            return false;
        };
        let flushed = {
            let fb = self.flush_before.load(Ordering::Relaxed);
            fb != 0 && (e.meta.last_access as u64) < fb && fb <= now as u64
        };
        let expired = is_expired(e.meta.exptime, now);
        if !(flushed || expired) {
            return true;
        }
        let fetched = e.meta.fetched;
        shard.remove(key);
        let mut s = self.stats.lock();
        s.curr_items -= 1;
        if flushed {
            s.get_flushed += 1;
        } else {
            s.get_expired += 1;
            s.reclaimed += 1;
            if !fetched {
                s.expired_unfetched += 1;
            }
        }
        false
    }

    /// Looks up `key`; on a hit calls `f` with the item pinned and returns its result.
    /// Changes `f` makes to `meta.exptime`, `meta.stale`, `meta.win_sent` are kept.
    pub fn get<R>(
        &self,
        key: &[u8],
        opts: GetOptions,
        f: impl FnOnce(&mut ItemView) -> R,
    ) -> Option<R> {
        let now = clock::now();
        let mut shard = self.shard(key).lock();
        if !self.live(&mut shard, key, now) {
            return None;
        }
        if !opts.no_bump {
            shard.touch_lru(key);
        }
        let e = shard.map.get_mut(key)?;
        if let Some(exp) = opts.new_exptime {
            e.meta.exptime = exp;
        }
        let (kref, _) = (key, ());
        let mut view = ItemView {
            key: kref,
            meta: e.meta,
            value: &e.value,
        };
        let r = f(&mut view);
        let m = view.meta;
        e.meta.exptime = m.exptime;
        e.meta.stale = m.stale;
        e.meta.win_sent = m.win_sent;
        if !opts.no_bump {
            e.meta.fetched = true;
            e.meta.last_access = now;
        }
        Some(r)
    }

    fn make_room(&self, shard: &mut Shard, need: usize) -> bool {
        let limit = self.shard_limit.load(Ordering::Relaxed) as usize;
        while shard.bytes + need > limit {
            if !self.cfg.evict_to_free {
                return false;
            }
            let Some((_, k)) = shard.lru.pop_first() else {
                return false;
            };
            if let Some(e) = shard.map.remove(&k) {
                shard.bytes -= charge(&k, e.value.len());
                let mut s = self.stats.lock();
                s.curr_items -= 1;
                s.evictions += 1;
                if !e.meta.fetched {
                    s.evicted_unfetched += 1;
                }
            }
        }
        true
    }

    pub fn store(&self, req: &StoreRequest) -> StoreOutcome {
        let now = clock::now();
        if charge(req.key, req.value.len()) > self.cfg.item_size_max {
            return StoreOutcome::TooLarge;
        }
        let mut shard = self.shard(req.key).lock();
        let exists = self.live(&mut shard, req.key, now);
        let old_meta = shard.map.get(req.key).map(|e| e.meta);
        let mut stale = false;
        if let Some(c) = req.compare_cas {
            match old_meta {
                None => return StoreOutcome::NotFound,
                Some(m) if m.cas != c => {
                    if req.invalidate && c < m.cas {
                        stale = true;
                    } else {
                        return StoreOutcome::Exists;
                    }
                }
                _ => {}
            }
        }
        let value: Vec<u8> = match req.mode {
            SetMode::Set => req.value.to_vec(),
            SetMode::Add if exists => {
                // memcached bumps the existing item on a failed add.
                shard.touch_lru(req.key);
                return StoreOutcome::NotStored;
            }
            SetMode::Add => req.value.to_vec(),
            SetMode::Replace | SetMode::Append | SetMode::Prepend if !exists => {
                return StoreOutcome::NotStored
            }
            SetMode::Replace => req.value.to_vec(),
            SetMode::Append | SetMode::Prepend => {
                let old = &shard
                    .map
                    .get(req.key)
                    .map(|e| e.value.clone())
                    .unwrap_or_default();
                let mut v = Vec::with_capacity(old.len() + req.value.len());
                if req.mode == SetMode::Append {
                    v.extend_from_slice(old);
                    v.extend_from_slice(req.value);
                } else {
                    v.extend_from_slice(req.value);
                    v.extend_from_slice(old);
                }
                if charge(req.key, v.len()) > self.cfg.item_size_max {
                    return StoreOutcome::TooLarge;
                }
                v
            }
        };
        let (flags, mut exptime) = match (req.mode, old_meta) {
            (SetMode::Append | SetMode::Prepend, Some(m)) => (m.flags, m.exptime),
            _ => (req.flags, req.exptime),
        };
        let mut win_sent = req.win_sent;
        if stale {
            // memcached: a stale store keeps the TTL and the win token
            if let Some(m) = old_meta {
                exptime = m.exptime;
                win_sent |= m.win_sent;
            }
        }
        if let Some(_old) = shard.remove(req.key) {
            self.stats.lock().curr_items -= 1;
        }
        let need = charge(req.key, value.len());
        if !self.make_room(&mut shard, need) {
            return StoreOutcome::NoMemory;
        }
        let cas = req.new_cas.unwrap_or_else(|| self.next_cas());
        shard.seq += 1;
        let seq = shard.seq;
        let meta = ItemMeta {
            flags,
            cas,
            exptime,
            last_access: now,
            fetched: false,
            stale,
            win_sent,
        };
        shard.bytes += need;
        shard.lru.insert(seq, req.key.into());
        shard.map.insert(req.key.into(), Entry { value, meta, seq });
        let mut s = self.stats.lock();
        s.curr_items += 1;
        s.total_items += 1;
        StoreOutcome::Stored(cas)
    }

    pub fn delete(&self, req: &DeleteRequest) -> DeleteOutcome {
        let now = clock::now();
        let mut shard = self.shard(req.key).lock();
        if !self.live(&mut shard, req.key, now) {
            return DeleteOutcome::NotFound;
        }
        let Some(e) = shard.map.get_mut(req.key) else {
            return DeleteOutcome::NotFound;
        };
        if let Some(c) = req.compare_cas {
            if c != e.meta.cas {
                return DeleteOutcome::Exists;
            }
        }
        if let Some(exp) = req.invalidate {
            e.meta.stale = true;
            e.meta.win_sent = false;
            if let Some(x) = exp {
                e.meta.exptime = x;
            }
            e.meta.cas = req.new_cas.unwrap_or_else(|| self.next_cas());
            return DeleteOutcome::Deleted;
        }
        if req.remove_value {
            let old_len = e.value.len();
            e.value.clear();
            e.meta.flags = 0;
            shard.bytes -= old_len;
            return DeleteOutcome::Deleted;
        }
        shard.remove(req.key);
        self.stats.lock().curr_items -= 1;
        DeleteOutcome::Deleted
    }

    pub fn arith(&self, req: &ArithRequest) -> ArithOutcome {
        let now = clock::now();
        let mut shard = self.shard(req.key).lock();
        if !self.live(&mut shard, req.key, now) {
            drop(shard);
            if let Some((initial, exptime)) = req.vivify {
                let text = initial.to_string();
                let mut sr = StoreRequest::new(req.key, text.as_bytes(), 0, exptime, SetMode::Add);
                sr.new_cas = req.new_cas;
                return match self.store(&sr) {
                    StoreOutcome::Stored(cas) => ArithOutcome::Value {
                        value: initial,
                        cas,
                        exptime,
                        created: true,
                    },
                    StoreOutcome::NotStored => self.arith(&ArithRequest {
                        vivify: None,
                        ..*req
                    }),
                    _ => ArithOutcome::NoMemory,
                };
            }
            return ArithOutcome::NotFound;
        }
        let next_cas = req.new_cas.unwrap_or_else(|| self.next_cas());
        let Some(e) = shard.map.get_mut(req.key) else {
            return ArithOutcome::NotFound;
        };
        if let Some(c) = req.compare_cas {
            if c != e.meta.cas {
                return ArithOutcome::Exists;
            }
        }
        let Some(cur) = parse_u64(&e.value) else {
            return ArithOutcome::NonNumeric;
        };
        let value = if req.incr {
            cur.wrapping_add(req.delta)
        } else {
            cur.saturating_sub(req.delta)
        };
        let old_len = e.value.len();
        let text = value.to_string();
        if text.len() < old_len {
            // memcached rewrites in place when the number fits (incr or decr),
            // padding with spaces.
            e.value[..text.len()].copy_from_slice(text.as_bytes());
            for b in &mut e.value[text.len()..] {
                *b = b' ';
            }
        } else {
            e.value.clear();
            e.value.extend_from_slice(text.as_bytes());
        }
        let new_len = e.value.len();
        e.meta.cas = next_cas;
        if let Some(x) = req.new_exptime {
            e.meta.exptime = x;
        }
        let exptime = e.meta.exptime;
        shard.bytes = shard.bytes + new_len - old_len;
        shard.touch_lru(req.key);
        ArithOutcome::Value {
            value,
            cas: next_cas,
            exptime,
            created: false,
        }
    }

    /// Invalidates every item last written before `at` (relative time; 0 = now).
    pub fn flush_all(&self, at: RelTime) {
        let now = clock::now();
        let when = if at == 0 { now } else { at };
        // Items stamped at or before `when` are dead once `when` has passed.
        self.flush_before.store(when as u64 + 1, Ordering::Relaxed);
        if when <= now {
            for shard in &self.shards {
                let mut sh = shard.lock();
                let n = sh.map.len() as u64;
                sh.map.clear();
                sh.lru.clear();
                sh.bytes = 0;
                self.stats.lock().curr_items -= n;
            }
            self.flush_before.store(0, Ordering::Relaxed);
        }
    }

    /// `cache_memlimit`: changes the memory limit at run time.
    pub fn set_memory_limit(&self, bytes: usize) {
        self.shard_limit
            .store((bytes / SHARDS) as u64, Ordering::Relaxed);
        self.stats.lock().limit_maxbytes = bytes as u64;
    }

    pub fn stats(&self) -> StoreStats {
        let mut s = *self.stats.lock();
        s.bytes = self.shards.iter().map(|sh| sh.lock().bytes as u64).sum();
        s.hash_power_level = self.cfg.hashpower;
        s
    }

    /// `stats slabs`, `stats items`, `stats sizes`: (name, value) rows, or None for unknown groups.
    pub fn stats_group(&self, group: &str) -> Option<Vec<(String, String)>> {
        match group {
            "slabs" => Some(vec![
                ("active_slabs".into(), "0".into()),
                ("total_malloced".into(), self.stats().bytes.to_string()),
            ]),
            "items" | "sizes" => Some(vec![]),
            _ => None,
        }
    }
}

/// memcached's strtoull rules for stored counters: digits, optionally followed by spaces.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0
        || digits > 20
        || v[digits..]
            .iter()
            .any(|&b| b != b' ' && b != b'\r' && b != b'\n')
    {
        return None;
    }
    std::str::from_utf8(&v[..digits]).ok()?.parse().ok()
}
