//! Precompressed `.gz` files for the shipped SDK: `FILE.gz` next to each file, served instead
//! of the file to clients that accept gzip (the collector's `/sdk`, nginx `gzip_static`, a
//! CDN). Zopfli writes a standard gzip stream — any gzip decoder reads it — a few percent
//! smaller than `gzip -9`, at a much higher (one-off, build-time) cost.
//!
//! The output is deterministic: the header carries no mtime and no file name (zopfli writes
//! `1f 8b 08 00 00000000 02 03`), so the same input always gives the same bytes. Every `.gz`
//! is decoded again (flate2) and compared with its file before it is written.

use std::io::Read;
use std::num::NonZeroU64;

use anyhow::{Context, bail, ensure};

/// Zopfli iterations the build uses (README "Size": measured against 15…1000).
pub(crate) const DEFAULT_ITERATIONS: u64 = 200;

/// The gzip stream of `data`, compressed with zopfli at `iterations` (each checked with
/// [`verify`]).
pub(crate) fn gzip(data: &[u8], iterations: u64) -> anyhow::Result<Vec<u8>> {
    let options = zopfli::Options {
        iteration_count: NonZeroU64::new(iterations).context("iterations must be at least 1")?,
        ..zopfli::Options::default()
    };
    let mut out = Vec::with_capacity(data.len() / 2);
    zopfli::compress(options, zopfli::Format::Gzip, data, &mut out).context("zopfli")?;
    verify(&out, data)?;
    Ok(out)
}

/// Checks that `gz` is one gzip member without a file name, mtime or any optional field,
/// and that it decompresses to exactly `original` (a decoder checks CRC-32 and length too).
pub(crate) fn verify(gz: &[u8], original: &[u8]) -> anyhow::Result<()> {
    ensure!(
        gz.len() >= 18 && gz[..3] == [0x1f, 0x8b, 8],
        "not a gzip (deflate) stream"
    );
    ensure!(
        gz[3] == 0,
        "the gzip header has flags {:#04x} (name, comment, extra field?)",
        gz[3]
    );
    ensure!(gz[4..8] == [0; 4], "the gzip header carries an mtime");
    let mut decoder = flate2::bufread::GzDecoder::new(gz);
    let mut decoded = Vec::with_capacity(original.len());
    decoder
        .read_to_end(&mut decoded)
        .context("the .gz does not decompress")?;
    let rest = decoder.into_inner();
    if !rest.is_empty() {
        bail!("{} bytes after the gzip member", rest.len());
    }
    if decoded != original {
        bail!(
            "the .gz decompresses to {} bytes that differ from the file ({} bytes)",
            decoded.len(),
            original.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn sample() -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..400u32 {
            writeln!(
                data,
                "{{\"n\":{i},\"kind\":\"click\",\"x\":{}}}",
                i * 7 % 13
            )
            .unwrap();
        }
        data
    }

    #[test]
    fn round_trips_deterministically_and_beats_flate2_best() {
        let data = sample();
        let gz = gzip(&data, 15).unwrap();
        assert_eq!(gz, gzip(&data, 15).unwrap(), "deterministic");
        assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        let mut best = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        best.write_all(&data).unwrap();
        let best = best.finish().unwrap();
        assert!(gz.len() < best.len(), "{} vs {}", gz.len(), best.len());
        // Empty files work too.
        verify(&gzip(b"", 15).unwrap(), b"").unwrap();
        assert!(gzip(&data, 0).is_err());
    }

    #[test]
    fn verify_refuses_what_is_not_the_file() {
        let data = sample();
        let gz = gzip(&data, 1).unwrap();
        assert!(verify(&gz, &data[1..]).is_err(), "other content");
        assert!(verify(&gz[..gz.len() - 1], &data).is_err(), "truncated");
        let mut trailing = gz.clone();
        trailing.extend_from_slice(&gz);
        assert!(verify(&trailing, &data).is_err(), "second member");
        let mut corrupt = gz.clone();
        let crc = gz.len() - 8;
        corrupt[crc] ^= 1;
        assert!(verify(&corrupt, &data).is_err(), "CRC");
        let mut named = flate2::GzBuilder::new()
            .filename("spoor.js")
            .write(Vec::new(), flate2::Compression::best());
        named.write_all(&data).unwrap();
        assert!(
            verify(&named.finish().unwrap(), &data).is_err(),
            "file name"
        );
        let mut dated = flate2::GzBuilder::new()
            .mtime(1)
            .write(Vec::new(), flate2::Compression::best());
        dated.write_all(&data).unwrap();
        assert!(verify(&dated.finish().unwrap(), &data).is_err(), "mtime");
    }
}
