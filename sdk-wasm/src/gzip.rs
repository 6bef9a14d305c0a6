//! Gzip members with *stored* (uncompressed) deflate blocks, made synchronously.
//!
//! A gzip body may be several members one after the other; decoders read them as one
//! stream (RFC 1952 §2.2; the collector uses `flate2::read::MultiGzDecoder`). The SDK
//! compresses a batch's events ahead of time with the browser's `CompressionStream` and,
//! when it sends them, wraps that member between two stored members made here: the
//! envelope head with a fresh `sent_at` (and the key, the dropped count) and the tail
//! (`]}`, or more events that arrived since). So neither sending nor the unload path ever
//! waits for a compressor, and `sent_at` is always the time of sending.

use alloc::vec::Vec;

/// Largest stored deflate block.
const BLOCK: usize = 65_535;

/// `text` as one gzip member of stored blocks.
pub fn stored(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 32);
    // Magic, deflate, no flags, no mtime, no extra flags, unknown OS.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut rest = text;
    loop {
        // A plain loop (not `chunks().peekable()`): measured smaller. An empty text is one
        // empty final block.
        let n = rest.len().min(BLOCK);
        let last = n == rest.len();
        let [lo, hi] = (n as u16).to_le_bytes();
        // BFINAL on the last, BTYPE 00; LEN and NLEN.
        out.extend_from_slice(&[u8::from(last), lo, hi, !lo, !hi]);
        let (chunk, tail) = (rest.get(..n).unwrap_or(&[]), rest.get(n..).unwrap_or(&[]));
        out.extend_from_slice(chunk);
        rest = tail;
        if last {
            break;
        }
    }
    out.extend_from_slice(&crc32(text).to_le_bytes());
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE), four bits at a time: a 64-byte table instead of 1 KiB, fast enough for
/// envelopes and the few events that may follow a precompressed batch.
pub fn crc32(data: &[u8]) -> u32 {
    const T: [u32; 16] = [
        0x0000_0000,
        0x1db7_1064,
        0x3b6e_20c8,
        0x26d9_30ac,
        0x76dc_4190,
        0x6b6b_51f4,
        0x4db2_6158,
        0x5005_713c,
        0xedb8_8320,
        0xf00f_9344,
        0xd6d6_a3e8,
        0xcb61_b38c,
        0x9b64_c2b0,
        0x86d3_d2d4,
        0xa00a_e278,
        0xbdbd_f21c,
    ];
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        c = (c >> 4) ^ T[(c & 15) as usize];
        c = (c >> 4) ^ T[(c & 15) as usize];
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip_all(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn crc_matches_flate2() {
        for data in [&b""[..], b"a", b"123456789", &[0xff; 1000]] {
            let mut h = flate2::Crc::new();
            h.update(data);
            assert_eq!(crc32(data), h.sum());
        }
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn stored_members_concatenate_with_real_gzip() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"\"middle\"").unwrap();
        let mut body = stored(b"[");
        body.extend(gz.finish().unwrap());
        body.extend(stored(b",\"last\"]"));
        assert_eq!(gunzip_all(&body), b"[\"middle\",\"last\"]");
        // Empty and multi-block members.
        assert_eq!(gunzip_all(&stored(b"")), b"");
        let big: Vec<u8> = (0..150_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(gunzip_all(&stored(&big)), big);
    }
}
