//! The mutator: random edits of a corpus input, seeded and repeatable.

/// A small, fast, seeded random source (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Values that tend to break length and index arithmetic.
const INTERESTING: &[u64] = &[
    0,
    1,
    7,
    8,
    0x7f,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7ff8_0001_0000_0005,
    0x7ff8_0000_0000_0006,
    0x7ff8_0002_0000_0007,
    u64::MAX,
];

/// Returns a mutation of `input`: one to four edits, some of them splicing
/// in `dictionary` tokens or a piece of `other` (another corpus input).
pub fn mutate(
    rng: &mut Rng,
    input: &[u8],
    other: &[u8],
    dictionary: &[&[u8]],
    max_len: usize,
) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next_u64() as u8;
            }
            2 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(at..at, bytes);
            }
            3 if !out.is_empty() => {
                let end = (at + 1 + rng.below(32)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 if !dictionary.is_empty() => {
                let token = dictionary[rng.below(dictionary.len())];
                out.splice(at..at, token.iter().copied());
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            6 => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1, 2, 4, 8][rng.below(4)];
                let bytes = value.to_le_bytes();
                let end = (at + width).min(out.len());
                out.splice(at..end, bytes[..width].iter().copied());
            }
            _ if out.len() >= 2 => {
                let from = rng.below(out.len());
                let end = (from + 1 + rng.below(32)).min(out.len());
                let piece = out[from..end].to_vec();
                out.splice(at.min(out.len())..at.min(out.len()), piece);
            }
            _ => out.push(rng.next_u64() as u8),
        }
    }
    out.truncate(max_len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_is_repeatable_and_bounded() {
        let a = mutate(&mut Rng::new(7), b"hello", b"world", &[b"::"], 64);
        let b = mutate(&mut Rng::new(7), b"hello", b"world", &[b"::"], 64);
        assert_eq!(a, b);
        let mut rng = Rng::new(9);
        let mut x = b"seed".to_vec();
        for _ in 0..10_000 {
            x = mutate(&mut rng, &x, b"other", &[b"tok"], 256);
            assert!(x.len() <= 256);
        }
    }
}
