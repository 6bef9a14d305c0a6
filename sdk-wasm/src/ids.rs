//! Identifiers: UUID v4 text from random bytes, and a cheap hash for sampling.

use alloc::string::String;

use crate::json::push_hex;

/// Formats 16 random bytes as a version-4 UUID (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
pub fn uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        push_hex(&mut s, u32::from(byte >> 4));
        push_hex(&mut s, u32::from(*byte));
    }
    s
}

/// FNV-1a, 32 bits: stable across page loads, used to put a visitor in or out of a sample.
pub fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in s.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Whether the visitor with `anonymous_id` is inside a sample of `per_million` / 1 000 000.
pub fn in_sample(anonymous_id: &str, per_million: u32) -> bool {
    per_million >= 1_000_000 || fnv1a(anonymous_id) % 1_000_000 < per_million
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let u = uuid_v4([0; 16]);
        assert_eq!(u, "00000000-0000-4000-8000-000000000000");
        assert_eq!(u.len(), 36);
    }

    #[test]
    fn sampling_is_stable_and_roughly_proportional() {
        assert!(in_sample("x", 1_000_000));
        assert!(!in_sample("x", 0));
        assert_eq!(in_sample("abc", 500_000), in_sample("abc", 500_000));
        let ids: Vec<String> = (0..10_000)
            .map(|i| {
                uuid_v4([
                    i as u8,
                    (i >> 8) as u8,
                    3,
                    4,
                    5,
                    6,
                    7,
                    8,
                    9,
                    10,
                    11,
                    12,
                    13,
                    14,
                    15,
                    16,
                ])
            })
            .collect();
        let n = ids.iter().filter(|id| in_sample(id, 250_000)).count();
        assert!((2_000..3_000).contains(&n), "{n}");
    }
}
