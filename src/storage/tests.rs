//! Engine unit tests: semantics of every operation, memory limits,
//! eviction order, TEMP, chained items, rebalancing, hash growth and a
//! multi-threaded consistency stress.

use super::*;
use crate::clock;

fn cfg(mb: usize) -> StoreConfig {
    StoreConfig {
        memory_limit: mb << 20,
        ..Default::default()
    }
}

fn quiet(mb: usize) -> StoreConfig {
    StoreConfig {
        lru_crawler: false,
        lru_maintainer: false,
        ..cfg(mb)
    }
}

fn set(s: &Store, k: &[u8], v: &[u8]) -> StoreOutcome {
    s.store(&StoreRequest::new(k, v, 0, 0, SetMode::Set))
}

fn get(s: &Store, k: &[u8]) -> Option<Vec<u8>> {
    s.get(k, GetOptions::default(), |v| {
        let mut out = Vec::new();
        v.append_value_to(&mut out);
        assert_eq!(out.len(), v.value_len());
        out
    })
}

fn get_meta(s: &Store, k: &[u8]) -> Option<ItemMeta> {
    s.get(k, GetOptions::default(), |v| v.meta)
}

#[test]
fn set_get_delete_modes() {
    let s = Store::new(quiet(8));
    assert!(matches!(set(&s, b"a", b"hello"), StoreOutcome::Stored(_)));
    assert_eq!(get(&s, b"a").as_deref(), Some(&b"hello"[..]));
    assert_eq!(get(&s, b"b"), None);
    let add = |k: &[u8], v: &[u8], m| s.store(&StoreRequest::new(k, v, 7, 0, m));
    assert_eq!(add(b"a", b"x", SetMode::Add), StoreOutcome::NotStored);
    assert!(matches!(
        add(b"b", b"x", SetMode::Add),
        StoreOutcome::Stored(_)
    ));
    assert_eq!(add(b"c", b"x", SetMode::Replace), StoreOutcome::NotStored);
    assert!(matches!(
        add(b"b", b"yy", SetMode::Replace),
        StoreOutcome::Stored(_)
    ));
    assert!(matches!(
        add(b"b", b"<", SetMode::Prepend),
        StoreOutcome::Stored(_)
    ));
    assert!(matches!(
        add(b"b", b">", SetMode::Append),
        StoreOutcome::Stored(_)
    ));
    assert_eq!(get(&s, b"b").as_deref(), Some(&b"<yy>"[..]));
    assert_eq!(get_meta(&s, b"b").map(|m| m.flags), Some(7));
    assert_eq!(add(b"zz", b"x", SetMode::Append), StoreOutcome::NotStored);
    assert!(matches!(
        s.delete(&DeleteRequest::new(b"b")),
        DeleteOutcome::Deleted { .. }
    ));
    assert_eq!(s.delete(&DeleteRequest::new(b"b")), DeleteOutcome::NotFound);
    assert_eq!(get(&s, b"b"), None);
    let st = s.stats();
    assert_eq!(st.curr_items, 1);
    assert!(st.bytes > 0);
}

#[test]
fn cas_semantics() {
    let s = Store::new(quiet(8));
    let StoreOutcome::Stored(c1) = set(&s, b"k", b"v1") else {
        panic!()
    };
    let mut r = StoreRequest::new(b"k", b"v2", 0, 0, SetMode::Set);
    r.compare_cas = Some(c1 + 100);
    assert_eq!(s.store(&r), StoreOutcome::Exists);
    r.compare_cas = Some(c1);
    let StoreOutcome::Stored(c2) = s.store(&r) else {
        panic!()
    };
    assert!(c2 > c1);
    assert_eq!(get_meta(&s, b"k").unwrap().cas, c2);
    let mut r = StoreRequest::new(b"nope", b"v", 0, 0, SetMode::Set);
    r.compare_cas = Some(1);
    assert_eq!(s.store(&r), StoreOutcome::NotFound);
    let mut d = DeleteRequest::new(b"k");
    d.compare_cas = Some(c1);
    assert_eq!(s.delete(&d), DeleteOutcome::Exists);
    d.compare_cas = Some(c2);
    assert!(matches!(s.delete(&d), DeleteOutcome::Deleted { .. }));
    // -C: no CAS stored, always 0.
    let s = Store::new(StoreConfig {
        use_cas: false,
        ..quiet(8)
    });
    assert_eq!(set(&s, b"k", b"v"), StoreOutcome::Stored(0));
    assert_eq!(get_meta(&s, b"k").unwrap().cas, 0);
}

#[test]
fn arith_like_memcached() {
    let s = Store::new(quiet(8));
    set(&s, b"n", b"100");
    let v = |o| match o {
        ArithOutcome::Value { value, .. } => value,
        other => panic!("{other:?}"),
    };
    assert_eq!(v(s.arith(&ArithRequest::new(b"n", false, 95))), 5);
    assert_eq!(get(&s, b"n").as_deref(), Some(&b"5  "[..]));
    assert_eq!(v(s.arith(&ArithRequest::new(b"n", true, 1000))), 1005);
    assert_eq!(get(&s, b"n").as_deref(), Some(&b"1005"[..]));
    assert_eq!(v(s.arith(&ArithRequest::new(b"n", false, 5000))), 0);
    set(&s, b"m", b"18446744073709551615");
    assert_eq!(v(s.arith(&ArithRequest::new(b"m", true, 2))), 1);
    set(&s, b"t", b"abc");
    assert_eq!(
        s.arith(&ArithRequest::new(b"t", true, 1)),
        ArithOutcome::NonNumeric
    );
    assert_eq!(
        s.arith(&ArithRequest::new(b"x", true, 1)),
        ArithOutcome::NotFound
    );
    let mut viv = ArithRequest::new(b"x", true, 1);
    viv.vivify = Some((10, 0));
    assert!(matches!(
        s.arith(&viv),
        ArithOutcome::Value {
            value: 10,
            created: true,
            ..
        }
    ));
    assert!(matches!(
        s.arith(&viv),
        ArithOutcome::Value {
            value: 11,
            created: false,
            ..
        }
    ));
}

#[test]
fn meta_fields_write_back() {
    let s = Store::new(quiet(8));
    set(&s, b"k", b"v");
    let m = get_meta(&s, b"k").unwrap();
    assert!(!m.fetched);
    s.get(b"k", GetOptions::default(), |v| {
        assert!(v.meta.fetched);
        v.meta.stale = true;
        v.meta.win_sent = true;
        v.meta.exptime = clock::now() + 100;
    });
    let m = get_meta(&s, b"k").unwrap();
    assert!(m.stale && m.win_sent);
    assert_eq!(m.exptime, clock::now() + 100);
    let mut d = DeleteRequest::new(b"k");
    d.invalidate = Some(Some(clock::now() + 30));
    assert!(matches!(s.delete(&d), DeleteOutcome::Deleted { .. }));
    let m = get_meta(&s, b"k").unwrap();
    assert!(m.stale && !m.win_sent);
    let mut d = DeleteRequest::new(b"k");
    d.remove_value = true;
    s.delete(&d);
    assert_eq!(get(&s, b"k").as_deref(), Some(&b""[..]));
}

#[test]
fn expiry_lazy_and_crawler() {
    let s = Store::new(quiet(8));
    s.store(&StoreRequest::new(b"old", b"v", 0, 1, SetMode::Set)); // rel 1: past
    assert_eq!(get(&s, b"old"), None);
    assert_eq!(s.stats().get_expired, 1);
    assert_eq!(s.stats().expired_unfetched, 1);
    for i in 0..100 {
        let k = format!("e{i}");
        s.store(&StoreRequest::new(k.as_bytes(), b"v", 0, 1, SetMode::Set));
    }
    assert_eq!(s.crawl_now(), 100);
    let st = s.stats();
    assert_eq!(st.crawler_reclaimed, 100);
    assert_eq!(st.curr_items, 0);
}

#[test]
fn flush_now_and_delayed() {
    for use_cas in [true, false] {
        let s = Store::new(StoreConfig {
            use_cas,
            ..quiet(8)
        });
        for i in 0..1000 {
            set(&s, format!("k{i}").as_bytes(), b"v");
        }
        s.flush_all(0);
        assert_eq!(get(&s, b"k1"), None);
        set(&s, b"new", b"v");
        assert_eq!(get(&s, b"new").as_deref(), Some(&b"v"[..]));
        if use_cas {
            // Lazy: the read counted as flushed, the crawler frees the rest.
            assert_eq!(s.stats().get_flushed, 1);
            assert_eq!(s.crawl_now(), 999);
        }
        assert_eq!(s.stats().curr_items, 1);
    }
    // Delayed: items stay until the time passes, then are dead.
    let s = Store::new(quiet(8));
    set(&s, b"a", b"v");
    s.flush_all(clock::now() + 1);
    assert_eq!(get(&s, b"a").as_deref(), Some(&b"v"[..]));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(get(&s, b"a"), None);
    set(&s, b"b", b"v");
    assert_eq!(get(&s, b"b").as_deref(), Some(&b"v"[..]));
}

#[test]
fn large_chained_items_round_trip() {
    let s = Store::new(quiet(16));
    for &n in &[600_000usize, 1_000_000, 1_048_000, 524_288, 524_200] {
        let v: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        assert!(
            matches!(set(&s, b"big", &v), StoreOutcome::Stored(_)),
            "{n}"
        );
        let got = get(&s, b"big").unwrap();
        assert!(got == v, "size {n}");
        let parts = s
            .get(b"big", GetOptions::default(), |v| v.value_parts().count())
            .unwrap();
        assert!(parts >= 1);
    }
    assert_eq!(
        set(&s, b"huge", &vec![0u8; 1 << 20]),
        StoreOutcome::TooLarge
    );
    // append onto a chained item
    let v: Vec<u8> = vec![b'a'; 700_000];
    set(&s, b"big", &v);
    s.store(&StoreRequest::new(b"big", b"tail", 0, 0, SetMode::Append));
    let got = get(&s, b"big").unwrap();
    assert_eq!(got.len(), 700_004);
    assert_eq!(&got[700_000..], b"tail");
}

#[test]
fn memory_limit_and_eviction() {
    let s = Store::new(quiet(4));
    let v = vec![b'x'; 1000];
    for i in 0..20_000 {
        assert!(matches!(
            set(&s, format!("key{i}").as_bytes(), &v),
            StoreOutcome::Stored(_)
        ));
    }
    let st = s.stats();
    assert!(st.total_malloced <= 4 << 20, "{}", st.total_malloced);
    assert!(st.evictions > 0);
    assert!(
        st.curr_items > 3000 && st.curr_items < 4200,
        "{}",
        st.curr_items
    );
    // The newest keys are there.
    assert!(get(&s, b"key19999").is_some());
    assert!(get(&s, b"key0").is_none());
}

#[test]
fn read_keys_outlive_unread() {
    let s = Store::new(cfg(4));
    let v = vec![b'x'; 500];
    for i in 0..3000 {
        set(&s, format!("k{i}").as_bytes(), &v);
    }
    // Read the first 500 keys twice (active), then push lots of new items.
    for _ in 0..2 {
        for i in 0..500 {
            assert!(get(&s, format!("k{i}").as_bytes()).is_some());
        }
    }
    for i in 3000..15_000 {
        set(&s, format!("k{i}").as_bytes(), &v);
        if i % 1000 == 0 {
            for j in 0..500 {
                get(&s, format!("k{j}").as_bytes());
            }
        }
    }
    let read_alive = (0..500)
        .filter(|i| get(&s, format!("k{i}").as_bytes()).is_some())
        .count();
    let unread_alive = (500..3000)
        .filter(|i| get(&s, format!("k{i}").as_bytes()).is_some())
        .count();
    assert!(
        read_alive >= 490,
        "read {read_alive} {:?} {:?}",
        s.stats(),
        s.stats_group("items")
    );
    assert_eq!(unread_alive, 0);
}

#[test]
fn rewritten_keys_outlive_untouched_ones() {
    // Same-size overwrites skip the LRU relink (no class lock) and mark the
    // item active instead: it must still be protected like a fresh item.
    let s = Store::new(StoreConfig {
        lru_crawler: false,
        ..cfg(4)
    });
    let v = vec![b'x'; 500];
    let w = vec![b'y'; 500];
    for i in 0..3000 {
        set(&s, format!("k{i}").as_bytes(), &v);
    }
    let before = s.stats().total_items;
    for i in 0..500 {
        set(&s, format!("k{i}").as_bytes(), &w);
    }
    assert_eq!(s.stats().total_items, before + 500, "in-place stores count");
    for i in 3000..8000 {
        set(&s, format!("k{i}").as_bytes(), &v);
    }
    let rewritten = (0..500)
        .filter(|i| get(&s, format!("k{i}").as_bytes()).as_deref() == Some(&w[..]))
        .count();
    let untouched = (500..3000)
        .filter(|i| get(&s, format!("k{i}").as_bytes()).is_some())
        .count();
    assert!(s.stats().evictions > 0);
    assert!(rewritten >= 490, "rewritten alive {rewritten}");
    assert!(untouched < 2500, "untouched alive {untouched}");
}

#[test]
fn temp_items_are_not_evicted() {
    let s = Store::new(quiet(4));
    let ttl = clock::now() + 30; // below temporary_ttl (61)
    for i in 0..200 {
        let k = format!("temp{i}");
        s.store(&StoreRequest::new(k.as_bytes(), b"t", 0, ttl, SetMode::Set));
    }
    let v = vec![b'x'; 40];
    for i in 0..100_000 {
        set(&s, format!("n{i}").as_bytes(), &v);
    }
    assert!(s.stats().evictions > 0);
    for i in 0..200 {
        assert!(get(&s, format!("temp{i}").as_bytes()).is_some(), "temp{i}");
    }
    let rows = s.stats_group("items").unwrap();
    assert!(rows
        .iter()
        .any(|(k, v)| k.ends_with(":number_temp") && v == "200"));
}

#[test]
fn no_evict_mode_reports_no_memory() {
    let s = Store::new(StoreConfig {
        evict_to_free: false,
        ..quiet(2)
    });
    let v = vec![b'x'; 1000];
    let mut fails = 0;
    for i in 0..5000 {
        if set(&s, format!("k{i}").as_bytes(), &v) == StoreOutcome::NoMemory {
            fails += 1;
        }
    }
    assert!(fails > 0);
    assert_eq!(s.stats().evictions, 0);
    assert!(get(&s, b"k0").is_some());
}

fn del(s: &Store, k: &[u8]) -> bool {
    matches!(
        s.delete(&DeleteRequest::new(k)),
        DeleteOutcome::Deleted { .. }
    )
}

/// Value of key `i` in the page-move tests: differs per key, so a moved
/// item that landed on another's chunk would show.
fn numbered(i: usize, len: usize) -> Vec<u8> {
    let tag = format!("<{i}>");
    tag.bytes().cycle().take(len).collect()
}

#[test]
fn page_move_rescues_live_items_into_free_chunks() {
    let s = Store::new(quiet(16));
    let n = 4000; // ~1 KB items: several pages of one class
    for i in 0..n {
        set(&s, format!("k{i}").as_bytes(), &numbered(i, 1000));
    }
    // Every other item goes: each page is half free, none is empty.
    for i in (0..n).step_by(2) {
        assert!(del(&s, format!("k{i}").as_bytes()));
    }
    let cls = s.class_of_size(5, 1000).expect("class of 1 KB items") as i32;
    let before = s.stats();
    assert_eq!(s.slabs_reassign(cls, 1), ReassignResult::Ok);
    let after = s.stats();
    assert_eq!(after.slabs_moved, before.slabs_moved + 1);
    assert!(after.slab_reassign_rescues > 0, "items moved");
    assert_eq!(after.slab_reassign_evictions_nomem, 0);
    assert_eq!(after.evictions, before.evictions);
    assert_eq!(after.curr_items, (n / 2) as u64);
    for i in (1..n).step_by(2) {
        assert_eq!(
            get(&s, format!("k{i}").as_bytes()),
            Some(numbered(i, 1000)),
            "k{i}"
        );
    }
    // The moved items are still in their LRU: they can be replaced, deleted
    // and evicted like any other.
    assert!(matches!(set(&s, b"k1", b"new"), StoreOutcome::Stored(_)));
    assert!(del(&s, b"k3"));
    for i in 0..20_000 {
        set(&s, format!("fill{i}").as_bytes(), &numbered(i, 1000));
    }
    assert!(s.stats().evictions > 0);
}

#[test]
fn page_move_rescues_chained_items_piece_by_piece() {
    // 16 KB chunks: a 40 KB value is a head and two pieces, spread over
    // the pages of the largest class.
    let s = Store::new(StoreConfig {
        slab_chunk_max: 16 << 10,
        ..quiet(32)
    });
    let n = 600;
    for i in 0..n {
        set(&s, format!("k{i}").as_bytes(), &numbered(i, 40_000));
    }
    for i in (0..n).step_by(2) {
        assert!(del(&s, format!("k{i}").as_bytes()));
    }
    // Chained items live in the largest class.
    let largest = s.slab_classes() as i32;
    let before = s.stats();
    for _ in 0..3 {
        assert_eq!(s.slabs_reassign(largest, 1), ReassignResult::Ok);
    }
    let after = s.stats();
    assert_eq!(after.slabs_moved, before.slabs_moved + 3);
    assert!(after.slab_reassign_chunk_rescues > 0, "pieces moved");
    assert!(after.slab_reassign_rescues > 0, "heads moved");
    assert_eq!(after.slab_reassign_evictions_nomem, 0);
    for i in (1..n).step_by(2) {
        assert_eq!(
            get(&s, format!("k{i}").as_bytes()),
            Some(numbered(i, 40_000)),
            "k{i}"
        );
    }
    // The moved chains still append and delete like any other.
    let req = StoreRequest::new(b"k1", b"+tail", 0, 0, SetMode::Append);
    assert!(matches!(s.store(&req), StoreOutcome::Stored(_)));
    let mut want = numbered(1, 40_000);
    want.extend_from_slice(b"+tail");
    assert_eq!(get(&s, b"k1"), Some(want));
    for i in (1..n).step_by(2) {
        assert!(del(&s, format!("k{i}").as_bytes()));
    }
    assert_eq!(s.stats().curr_items, 0);
}

#[test]
fn no_evict_mode_compacts_a_class_to_free_a_page() {
    // With -M nothing may be evicted: a page leaves a class only if its
    // items fit in free chunks elsewhere in the class.
    let s = Store::new(StoreConfig {
        evict_to_free: false,
        ..quiet(4)
    });
    let mut stored = Vec::new();
    for i in 0..10_000 {
        match set(&s, format!("k{i}").as_bytes(), &numbered(i, 1000)) {
            StoreOutcome::Stored(_) => stored.push(i),
            _ => break,
        }
    }
    assert!(stored.len() > 1000, "memory filled with 1 KB items");
    for &i in stored.iter().step_by(2) {
        assert!(del(&s, format!("k{i}").as_bytes()));
    }
    // A new size needs a page; no page of the 1 KB class is empty.
    for i in 0..500 {
        assert!(
            matches!(
                set(&s, format!("small{i}").as_bytes(), &numbered(i, 60)),
                StoreOutcome::Stored(_)
            ),
            "small{i}"
        );
    }
    let st = s.stats();
    assert!(st.slabs_moved > 0 && st.slab_reassign_rescues > 0);
    assert_eq!(st.evictions, 0);
    for &i in stored.iter().skip(1).step_by(2) {
        assert_eq!(
            get(&s, format!("k{i}").as_bytes()),
            Some(numbered(i, 1000)),
            "k{i}"
        );
    }
}

#[test]
fn size_shift_rebalances_pages() {
    let s = Store::new(cfg(16));
    let small = vec![b's'; 100];
    for i in 0..200_000 {
        set(&s, format!("s{i}").as_bytes(), &small);
    }
    let big = vec![b'b'; 10_000];
    let n = 3200; // 32 MB: twice the limit
    for i in 0..n {
        assert!(
            matches!(
                set(&s, format!("b{i}").as_bytes(), &big),
                StoreOutcome::Stored(_)
            ),
            "b{i}"
        );
        // Paced (~3 s in all) so the maintainer sees a sustained shift.
        if i % 100 == 0 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let newest = (n * 3 / 4..n)
        .filter(|i| get(&s, format!("b{i}").as_bytes()).is_some())
        .count();
    // The maintainer works in wall-clock time and shares 2 cores with the
    // other tests, so this checks rebalancing happened (memcached keeps ~3%
    // here), not the 90% goal: that is measured by
    // scripts/memory-vs-memcached.sh, where memcrab keeps 100%.
    assert!(
        newest * 4 >= (n / 4) * 3,
        "newest quarter kept: {newest}/{}",
        n / 4
    );
    assert!(s.stats().slabs_moved > 0);
}

#[test]
fn reassign_replies() {
    let s = Store::new(quiet(8));
    assert_eq!(s.slabs_reassign(1, 1), ReassignResult::Same);
    assert_eq!(s.slabs_reassign(0, 3), ReassignResult::NoSpare);
    assert_eq!(s.slabs_reassign(-2, 3), ReassignResult::BadClass);
    assert_eq!(s.slabs_reassign(1, 250), ReassignResult::BadClass);
    assert_eq!(s.slabs_reassign(1, 2), ReassignResult::NoSpare);
    let v = vec![b'x'; 30];
    for i in 0..60_000 {
        set(&s, format!("k{i}").as_bytes(), &v);
    }
    let before = s.stats().slabs_moved;
    assert_eq!(s.slabs_reassign(1, 5), ReassignResult::Ok);
    assert_eq!(s.stats().slabs_moved, before + 1);
    assert!(s.slabs_automove(2));
    assert!(!s.slabs_automove(3));
    let rows = s.stats_group("slabs").unwrap();
    assert!(rows.iter().any(|(k, _)| k == "1:chunk_size"));
    assert!(rows.iter().any(|(k, _)| k == "active_slabs"));
    let sizes = s.stats_group("sizes").unwrap();
    assert!(!sizes.is_empty());
    assert!(s.stats_group("bogus").is_none());
}

#[test]
fn hash_table_grows_while_readable() {
    let s = std::sync::Arc::new(Store::new(StoreConfig {
        hashpower: 10,
        ..cfg(64)
    }));
    // Prefetching reads buckets without the stripe lock, from whichever
    // table the state names, while the maintainer migrates and retires them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prefetcher = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while n < 10_000 || !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("h{}", n % 70_000);
                s.prefetch_item(s.prefetch_bucket(key.as_bytes()));
                n += 1;
            }
            n
        })
    };
    for i in 0..60_000 {
        set(&s, format!("h{i}").as_bytes(), format!("v{i}").as_bytes());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.stats().hash_power_level < 15 && std::time::Instant::now() < deadline {
        for i in (0..60_000).step_by(97) {
            assert_eq!(
                get(&s, format!("h{i}").as_bytes()).unwrap(),
                format!("v{i}").into_bytes()
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    prefetcher.join().expect("the prefetching thread panicked");
    assert!(
        s.stats().hash_power_level >= 15,
        "{}",
        s.stats().hash_power_level
    );
    for i in 0..60_000 {
        assert_eq!(
            get(&s, format!("h{i}").as_bytes()).unwrap(),
            format!("v{i}").into_bytes()
        );
    }
}

/// 8 threads of mixed operations on a small key space; every value read
/// must be one some thread wrote for that key.
#[test]
fn concurrent_stress_values_consistent() {
    let s = std::sync::Arc::new(Store::new(StoreConfig {
        hashpower: 10,
        ..cfg(4)
    }));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut reads = 0;
                for n in 0..40_000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 3000;
                    let key = format!("key:{k}");
                    // Value: "key:{k}/{t}/{n}/" repeated to a size that
                    // depends on n, so sizes cross classes and chains.
                    let unit = format!("{key}/{t}/{n}/");
                    let reps = match x % 100 {
                        0 => 40_000,
                        1..=10 => 300,
                        _ => 1 + (x >> 8) as usize % 40,
                    };
                    match (x >> 20) % 10 {
                        0..=3 => {
                            set(&s, key.as_bytes(), unit.repeat(reps).as_bytes());
                        }
                        4 => {
                            s.delete(&DeleteRequest::new(key.as_bytes()));
                        }
                        5 => {
                            s.store(&StoreRequest::new(
                                key.as_bytes(),
                                unit.as_bytes(),
                                0,
                                0,
                                SetMode::Append,
                            ));
                        }
                        _ => {
                            if let Some(v) = get(&s, key.as_bytes()) {
                                reads += 1;
                                let text = String::from_utf8(v).expect("utf8");
                                for piece in
                                    text.split_terminator('/').collect::<Vec<_>>().chunks(3)
                                {
                                    assert_eq!(piece[0], key, "foreign value in {key}");
                                }
                            }
                        }
                    }
                }
                reads
            })
        })
        .collect();
    let reads: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(reads > 1000, "reads {reads} {:?}", s.stats());
    let st = s.stats();
    eprintln!(
        "stress: reads {reads}, items {}, pages moved {}, items moved {}, pieces moved {}",
        st.curr_items, st.slabs_moved, st.slab_reassign_rescues, st.slab_reassign_chunk_rescues
    );
    assert!(st.total_malloced <= 4 << 20);
}

/// Reads a reserved item's value back through `space_at`.
fn reserved_value(r: &mut Reserved) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < r.len() {
        let piece = r.space_at(out.len()).to_vec();
        assert!(!piece.is_empty());
        out.extend_from_slice(&piece);
    }
    out
}

#[test]
fn reserved_items_survive_evictions_and_page_moves() {
    let s = Store::new(quiet(8));
    let pattern = |n: usize, seed: u8| -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    };
    let small = pattern(100_000, 1);
    let big = pattern(900_000, 2); // chained
    let mut r1 = s.reserve(b"small", small.len()).expect("reserve");
    let mut r2 = s.reserve(b"big", big.len()).expect("reserve chained");
    // Filled in pieces, as reads from a socket would.
    for (r, v) in [(&mut r1, &small), (&mut r2, &big)] {
        let mut off = 0;
        for chunk in v.chunks(7_001) {
            assert_eq!(r.write_at(off, chunk), chunk.len());
            off += chunk.len();
        }
        assert_eq!(r.write_at(off, b"more"), 0, "bounded by the value length");
    }
    // Invisible until stored.
    assert_eq!(get(&s, b"small"), None);
    // Its page holds the oldest items of the class: the page mover picks it
    // first, and must leave it where it is.
    for i in 0..14 {
        set(&s, format!("f{i}").as_bytes(), &pattern(100_000, 9));
    }
    for _ in 0..4 {
        let _ = s.slabs_reassign(-1, 1);
        for i in 0..3000 {
            set(&s, format!("tiny{i}").as_bytes(), &[b't'; 40]);
        }
    }
    assert!(s.stats().slabs_moved > 0);
    assert!(
        reserved_value(&mut r1) == small,
        "reserved value overwritten"
    );
    // Churn: many times the memory in two size classes, page moves between them.
    for round in 0..4 {
        for i in 0..200 {
            let v = vec![b'a' + (i % 26) as u8; if round % 2 == 0 { 100_000 } else { 300 }];
            set(&s, format!("churn{round}:{i}").as_bytes(), &v);
        }
        for _ in 0..8 {
            let _ = s.slabs_reassign(-1, 1);
        }
    }
    assert!(s.stats().evictions > 0 || s.stats().slabs_moved > 0);
    assert!(
        reserved_value(&mut r1) == small,
        "reserved value overwritten"
    );
    assert!(reserved_value(&mut r2) == big, "reserved chain overwritten");
    let req = StoreRequest::new(b"small", b"", 0, 0, SetMode::Set);
    assert!(matches!(
        s.store_reserved(&req, r1),
        StoreOutcome::Stored(_)
    ));
    let req = StoreRequest::new(b"big", b"", 7, 0, SetMode::Set);
    assert!(matches!(
        s.store_reserved(&req, r2),
        StoreOutcome::Stored(_)
    ));
    assert!(get(&s, b"small").unwrap() == small);
    assert!(get(&s, b"big").unwrap() == big);
    assert_eq!(get_meta(&s, b"big").unwrap().flags, 7);
}

#[test]
fn reserved_items_are_freed_when_dropped_or_refused() {
    let s = Store::new(quiet(8));
    set(&s, b"k", b"old");
    // Far more than 8 MB reserved in total: leaked items could not be
    // evicted, so reservations would start failing.
    for i in 0..100 {
        let mut r = s
            .reserve(format!("r{i}").as_bytes(), 600_000)
            .expect("reserve");
        r.write_at(0, b"partial");
        drop(r); // the client went away
        let r = s.reserve(b"k", 600_000).expect("reserve");
        let add = StoreRequest::new(b"k", b"", 0, 0, SetMode::Add);
        assert_eq!(s.store_reserved(&add, r), StoreOutcome::NotStored);
        let r = s.reserve(b"nope", 600_000).expect("reserve");
        let replace = StoreRequest::new(b"nope", b"", 0, 0, SetMode::Replace);
        assert_eq!(s.store_reserved(&replace, r), StoreOutcome::NotStored);
    }
    assert_eq!(get(&s, b"k").unwrap(), b"old");
    assert_eq!(get(&s, b"nope"), None);
    // Too large for -I: no reservation (the ordinary path answers it).
    assert!(s.reserve(b"huge", 2 << 20).is_none());
}
