//! Request bodies: size-capped reading and decompression that stops at the cap, so a gzip
//! bomb costs at most `max_decompressed_bytes` of memory before it is refused.

use std::borrow::Cow;
use std::io::Read;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::error::ApiError;

/// How a body is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// zlib-wrapped deflate (HTTP's `deflate`), or raw deflate.
    Deflate,
}

impl Encoding {
    pub fn as_u8(self) -> u8 {
        match self {
            Encoding::Identity => 0,
            Encoding::Gzip => 1,
            Encoding::Deflate => 2,
        }
    }

    pub fn from_u8(b: u8) -> Option<Encoding> {
        match b {
            0 => Some(Encoding::Identity),
            1 => Some(Encoding::Gzip),
            2 => Some(Encoding::Deflate),
            _ => None,
        }
    }

    fn parse(name: &str) -> Option<Encoding> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "deflate" | "deflate-raw" => Some(Encoding::Deflate),
            _ => None,
        }
    }
}

/// The encoding from `Content-Encoding`, or from the `compression` query parameter, which
/// the browser SDK uses because setting `Content-Encoding` would need a CORS preflight.
pub fn encoding_of(
    content_encoding: Option<&str>,
    compression_param: Option<&str>,
) -> Result<Encoding, ApiError> {
    let header = content_encoding.unwrap_or("");
    let from_header = Encoding::parse(header).ok_or_else(|| {
        ApiError::UnsupportedEncoding(format!(
            "Content-Encoding {header:?} is not supported; use gzip, deflate or none"
        ))
    })?;
    let param = compression_param.unwrap_or("");
    let from_param = Encoding::parse(param).ok_or_else(|| {
        ApiError::UnsupportedEncoding(format!(
            "compression={param:?} is not supported; use gzip, deflate or leave it out"
        ))
    })?;
    match (from_header, from_param) {
        (Encoding::Identity, p) => Ok(p),
        (h, Encoding::Identity) => Ok(h),
        (h, p) if h == p => Ok(h),
        _ => Err(ApiError::BadRequest(
            "Content-Encoding and the compression parameter disagree; send one of them".into(),
        )),
    }
}

/// Reads a request body, refusing it as soon as it passes `max` bytes.
pub async fn read_limited(body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut body = body;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(too_large_compressed(max));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

pub fn too_large_compressed(max: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "request body is larger than {max} bytes; send fewer events per batch"
    ))
}

/// Decompresses `data`, refusing output beyond `max` bytes without producing more than
/// `max + 1` bytes of it.
pub fn decompress(data: &[u8], encoding: Encoding, max: usize) -> Result<Cow<'_, [u8]>, ApiError> {
    let read_capped = |reader: &mut dyn Read, what: &str| -> Result<Vec<u8>, ApiError> {
        let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max));
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        reader
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| ApiError::BadRequest(format!("body is not valid {what}: {e}")))?;
        if out.len() > max {
            return Err(ApiError::TooLarge(format!(
                "decompressed body is larger than {max} bytes; send fewer events per batch"
            )));
        }
        Ok(out)
    };
    match encoding {
        Encoding::Identity => {
            if data.len() > max {
                return Err(ApiError::TooLarge(format!(
                    "body is larger than {max} bytes; send fewer events per batch"
                )));
            }
            Ok(Cow::Borrowed(data))
        }
        Encoding::Gzip => {
            read_capped(&mut flate2::read::MultiGzDecoder::new(data), "gzip").map(Cow::Owned)
        }
        Encoding::Deflate if looks_like_zlib(data) => {
            read_capped(&mut flate2::read::ZlibDecoder::new(data), "deflate").map(Cow::Owned)
        }
        Encoding::Deflate => {
            read_capped(&mut flate2::read::DeflateDecoder::new(data), "deflate").map(Cow::Owned)
        }
    }
}

/// A zlib stream starts with a CMF/FLG pair: method 8 and a header checksum.
fn looks_like_zlib(data: &[u8]) -> bool {
    data.len() >= 2
        && data[0] & 0x0f == 8
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn encodings() {
        use Encoding::*;
        type Case<'a> = (Option<&'a str>, Option<&'a str>, Result<Encoding, u16>);
        let cases: &[Case] = &[
            (None, None, Ok(Identity)),
            (Some("gzip"), None, Ok(Gzip)),
            (Some("GZIP"), None, Ok(Gzip)),
            (None, Some("gzip"), Ok(Gzip)),
            (Some("deflate"), None, Ok(Deflate)),
            (None, Some("deflate-raw"), Ok(Deflate)),
            (Some("gzip"), Some("gzip"), Ok(Gzip)),
            (Some("gzip"), Some("deflate"), Err(400)),
            (Some("br"), None, Err(415)),
            (None, Some("zstd"), Err(415)),
        ];
        for &(header, param, expected) in cases {
            assert_eq!(
                encoding_of(header, param).map_err(|e| e.status().as_u16()),
                expected,
                "{header:?} {param:?}"
            );
        }
    }

    #[test]
    fn round_trips() {
        let text = b"{\"hello\":\"world\"}".repeat(100);
        assert_eq!(
            &*decompress(&gzip(&text), Encoding::Gzip, 1 << 20).unwrap(),
            &text[..]
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let zlib = z.finish().unwrap();
        assert_eq!(
            &*decompress(&zlib, Encoding::Deflate, 1 << 20).unwrap(),
            &text[..]
        );
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&text).unwrap();
        let raw = r.finish().unwrap();
        assert_eq!(
            &*decompress(&raw, Encoding::Deflate, 1 << 20).unwrap(),
            &text[..]
        );
    }

    #[test]
    fn bomb_is_refused_at_the_cap() {
        // 64 MiB of zeros compress to ~64 KiB.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        let err = decompress(&bomb, Encoding::Gzip, 1 << 20).unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
        // Exactly at the cap passes.
        let ok = gzip(&vec![b'a'; 1000]);
        assert_eq!(decompress(&ok, Encoding::Gzip, 1000).unwrap().len(), 1000);
        assert!(decompress(&ok, Encoding::Gzip, 999).is_err());
    }

    #[test]
    fn garbage_is_a_bad_request() {
        let err = decompress(b"not gzip at all", Encoding::Gzip, 1 << 20).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(err.to_string().contains("not valid gzip"), "{err}");
    }
}
