//! Key hashing for the hash table and the lock stripes: a small
//! multiply-xorshift hash over 8-byte words (wyhash-style folding with a
//! murmur3 finaliser). Keys are at most 250 bytes, so a short, branch-light
//! loop beats a general-purpose hasher, and the quality is enough for
//! power-of-two bucket masks (the low bits are fully mixed by the finaliser).

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xC2B2_AE3D_27D4_EB4F;

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn read_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Hashes a key to 64 well-mixed bits.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    let mut h = K0 ^ (key.len() as u64).wrapping_mul(K1);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        h = fold(h ^ read_u64(c), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(w), K0);
    }
    // murmur3 fmix64
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_and_spread() {
        let mut seen = std::collections::HashSet::new();
        let mut buckets = [0u32; 64];
        for i in 0..100_000u32 {
            let k = format!("key:{i}");
            let h = hash_key(k.as_bytes());
            assert!(seen.insert(h));
            buckets[(h & 63) as usize] += 1;
        }
        for &b in &buckets {
            assert!((1200..2000).contains(&b), "skewed low bits: {b}");
        }
        assert_ne!(hash_key(b""), hash_key(b"\0"));
    }
}
