//! What to send: random streams, key distributions, key names and the
//! request bytes for each protocol. No I/O here.

use crate::args::{digits, Args, BulkOp, Dist, Protocol};

/// xorshift64* — tiny, fast, good enough to pick keys and operations.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 scramble so nearby seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) by multiply-shift (no modulo bias worth noting).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// Picks key indices. Zipf uses an exact cumulative table (8 bytes a key)
/// searched by bisection: simple and obviously right.
pub enum KeyPicker {
    Uniform(u64),
    Zipf(Vec<f64>),
}

impl KeyPicker {
    pub fn new(dist: Dist, n: u64) -> KeyPicker {
        match dist {
            Dist::Uniform => KeyPicker::Uniform(n),
            Dist::Zipf(s) => {
                let mut cdf = Vec::with_capacity(n as usize);
                let mut sum = 0.0f64;
                for rank in 1..=n {
                    sum += 1.0 / (rank as f64).powf(s);
                    cdf.push(sum);
                }
                for c in cdf.iter_mut() {
                    *c /= sum;
                }
                KeyPicker::Zipf(cdf)
            }
        }
    }

    pub fn pick(&self, rng: &mut Rng) -> u32 {
        match self {
            KeyPicker::Uniform(n) => rng.below(*n) as u32,
            KeyPicker::Zipf(cdf) => {
                let u = rng.unit();
                let i = cdf.partition_point(|&c| c < u);
                i.min(cdf.len() - 1) as u32
            }
        }
    }
}

/// Everything a connection needs to build requests and check replies;
/// shared read-only by all connections.
pub struct Spec {
    pub protocol: Protocol,
    pub prefix: Vec<u8>,
    pub width: usize,
    pub mget: usize,
    pub get_ratio: f64,
    pub keys: u64,
    /// The value every set writes; gets compare against it.
    pub value: Vec<u8>,
    pub verify_data: bool,
    /// `set`/`ms` header tail after the key, e.g. ` 0 0 100\r\n`.
    set_tail: Vec<u8>,
}

impl Spec {
    pub fn new(a: &Args) -> Spec {
        // A value that varies byte to byte so shifted or truncated data shows;
        // a counter for bulk increments.
        let value: Vec<u8> = if a.bulk == Some(BulkOp::Incr) {
            b"0".to_vec()
        } else {
            (0..a.value_size)
                .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
                .collect()
        };
        let set_tail = match a.protocol {
            Protocol::Text => format!(" 0 0 {}\r\n", value.len()),
            Protocol::Meta => format!(" {} T0\r\n", value.len()),
        }
        .into_bytes();
        Spec {
            protocol: a.protocol,
            prefix: a.key_prefix.clone().into_bytes(),
            width: digits(a.keys - 1),
            mget: a.mget,
            get_ratio: a.get_ratio,
            keys: a.keys,
            value,
            verify_data: !a.no_verify_data,
            set_tail,
        }
    }

    pub fn push_key(&self, out: &mut Vec<u8>, idx: u32) {
        out.extend_from_slice(&self.prefix);
        let mut buf = [b'0'; 20];
        let mut n = idx as u64;
        for i in (0..self.width).rev() {
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&buf[..self.width]);
    }

    /// Key index back from a key name, if it is one of ours.
    pub fn parse_key(&self, key: &[u8]) -> Option<u32> {
        let digits = key.strip_prefix(self.prefix.as_slice())?;
        if digits.len() != self.width {
            return None;
        }
        let mut n: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + (d - b'0') as u64;
        }
        u32::try_from(n).ok()
    }

    /// Appends a get of `keys` to `out`.
    pub fn push_get(&self, out: &mut Vec<u8>, keys: &[u32]) {
        match self.protocol {
            Protocol::Text => {
                out.extend_from_slice(b"get");
                for &k in keys {
                    out.push(b' ');
                    self.push_key(out, k);
                }
                out.extend_from_slice(b"\r\n");
            }
            Protocol::Meta => {
                for &k in keys {
                    out.extend_from_slice(b"mg ");
                    self.push_key(out, k);
                    out.extend_from_slice(b" v\r\n");
                }
            }
        }
    }

    /// Appends a set of `key` (value = `self.value`) to `out`.
    pub fn push_set(&self, out: &mut Vec<u8>, key: u32) {
        out.extend_from_slice(match self.protocol {
            Protocol::Text => b"set ",
            Protocol::Meta => b"ms ",
        });
        self.push_key(out, key);
        out.extend_from_slice(&self.set_tail);
        out.extend_from_slice(&self.value);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let p = KeyPicker::new(Dist::Zipf(0.99), 1000);
        let mut rng = Rng::new(1);
        let mut low = 0;
        for _ in 0..100_000 {
            let k = p.pick(&mut rng);
            assert!(k < 1000);
            if k < 10 {
                low += 1;
            }
        }
        // H(10)/H(1000) for s≈1 is about 0.39.
        assert!((30_000..50_000).contains(&low), "low={low}");
    }

    #[test]
    fn uniform_covers_range() {
        let p = KeyPicker::new(Dist::Uniform, 10);
        let mut rng = Rng::new(2);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[p.pick(&mut rng) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }
}
