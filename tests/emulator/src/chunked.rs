//! `Content-Encoding: aws-chunked` decoding, with chained chunk signatures when signed.

use base64::Engine;
use bytes::{Bytes, BytesMut};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What checks the chained chunk signatures of a signed streaming body.
pub struct ChunkSigner {
    pub key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    /// The Authorization header's signature (the seed).
    pub seed: String,
}

/// A decoded aws-chunked body.
#[derive(Debug)]
pub struct Decoded {
    pub data: Bytes,
    /// Trailer names (lowercase) and values.
    pub trailers: Vec<(String, String)>,
}

fn line(buf: &[u8], pos: &mut usize) -> Result<String, String> {
    let rest = &buf[*pos..];
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("aws-chunked body ends inside a line")?;
    *pos += end + 2;
    String::from_utf8(rest[..end].to_vec()).map_err(|_| "aws-chunked line is not UTF-8".into())
}

/// Decodes an aws-chunked body, checking chunk signatures when `signer` is given.
///
/// Framing: `hex-size[;chunk-signature=SIG]\r\n DATA \r\n` repeated, then `0[;...]\r\n`, then
/// trailer lines `name:value\r\n`, then `\r\n`. With `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` every
/// chunk carries a signature chained from the request's seed signature.
pub fn decode(body: &[u8], signer: Option<&ChunkSigner>) -> Result<Decoded, String> {
    let mut pos = 0;
    let mut data = BytesMut::with_capacity(body.len());
    let mut previous = signer.map(|s| s.seed.clone());
    loop {
        let header = line(body, &mut pos)?;
        let (size_hex, ext) = match header.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (header.as_str(), None),
        };
        let size = usize::from_str_radix(size_hex.trim(), 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        if body.len() - pos < size {
            return Err("aws-chunked body is shorter than its chunk sizes".into());
        }
        let chunk = &body[pos..pos + size];
        pos += size;
        if let (Some(s), Some(prev)) = (signer, previous.as_mut()) {
            let sig = ext
                .and_then(|e| e.trim().strip_prefix("chunk-signature="))
                .ok_or("chunk without chunk-signature")?;
            let sts = crate::sigv4::chunk_string_to_sign(&s.amz_date, &s.scope, prev, chunk);
            let expected = crate::sigv4::signature(&s.key, &sts);
            if !crate::sigv4::constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
                return Err("chunk signature does not match".into());
            }
            *prev = expected;
        }
        if size == 0 {
            break;
        }
        data.extend_from_slice(chunk);
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return Err("chunk data is not followed by CRLF".into());
        }
        pos += 2;
    }
    let mut trailers = Vec::new();
    loop {
        let l = line(body, &mut pos)?;
        if l.is_empty() {
            break;
        }
        let (name, value) = l
            .split_once(':')
            .ok_or_else(|| format!("bad trailer {l:?}"))?;
        trailers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    if pos != body.len() {
        return Err("data after the aws-chunked trailers".into());
    }
    Ok(Decoded {
        data: data.freeze(),
        trailers,
    })
}

/// The checksum algorithms S3 names in `x-amz-checksum-*`.
pub const CHECKSUM_HEADERS: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// Base64 of the checksum named by header `name` over `data`; `None` when not computed here
/// (CRC64NVME is recorded but not verified).
pub fn compute_checksum(name: &str, data: &[u8]) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Some(match name {
        "x-amz-checksum-crc32" => b64.encode(crc32fast::hash(data).to_be_bytes()),
        "x-amz-checksum-crc32c" => b64.encode(crc32c::crc32c(data).to_be_bytes()),
        "x-amz-checksum-sha1" => b64.encode(Sha1::digest(data)),
        "x-amz-checksum-sha256" => b64.encode(Sha256::digest(data)),
        _ => return None,
    })
}

/// Checks a claimed checksum; errors carry the S3-style message.
pub fn verify_checksum(name: &str, claimed: &str, data: &[u8]) -> Result<(), String> {
    match compute_checksum(name, data) {
        Some(actual) if actual != claimed => Err(format!(
            "The {} you specified did not match the calculated checksum ({claimed} != {actual}).",
            name.trim_start_matches("x-amz-checksum-").to_uppercase()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unsigned_trailer_body() {
        let crc = compute_checksum("x-amz-checksum-crc32", b"hello world").unwrap();
        let body = format!("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
        let d = decode(body.as_bytes(), None).unwrap();
        assert_eq!(&d.data[..], b"hello world");
        assert_eq!(
            d.trailers,
            [("x-amz-checksum-crc32".to_string(), crc.clone())]
        );
        assert!(verify_checksum("x-amz-checksum-crc32", &crc, b"hello world").is_ok());
        assert!(verify_checksum("x-amz-checksum-crc32", &crc, b"hello").is_err());
    }

    #[test]
    fn known_checksum_values() {
        assert_eq!(
            compute_checksum("x-amz-checksum-crc32", b"hello world").unwrap(),
            "DUoRhQ=="
        );
        assert_eq!(
            compute_checksum("x-amz-checksum-crc32c", b"hello world").unwrap(),
            "yZRlqg=="
        );
        assert_eq!(compute_checksum("x-amz-checksum-crc64nvme", b"x"), None);
    }

    #[test]
    fn rejects_bad_framing() {
        assert!(decode(b"5\r\nhell", None).is_err());
        assert!(decode(b"5\r\nhelloXX0\r\n\r\n", None).is_err());
        assert!(decode(b"zz\r\n", None).is_err());
        assert!(decode(b"0\r\n\r\nextra", None).is_err());
        assert!(decode(b"0\r\n", None).is_err());
        let empty = decode(b"0\r\n\r\n", None).unwrap();
        assert!(empty.data.is_empty() && empty.trailers.is_empty());
    }

    #[test]
    fn checks_chained_chunk_signatures() {
        let key = crate::sigv4::signing_key("secret", "20240101", "us-west-2", "s3express");
        let signer = ChunkSigner {
            key,
            amz_date: "20240101T000000Z".into(),
            scope: "20240101/us-west-2/s3express/aws4_request".into(),
            seed: "a".repeat(64),
        };
        let sig = |prev: &str, data: &[u8]| {
            let sts =
                crate::sigv4::chunk_string_to_sign(&signer.amz_date, &signer.scope, prev, data);
            crate::sigv4::signature(&key, &sts)
        };
        let s1 = sig(&signer.seed, b"abc");
        let s2 = sig(&s1, b"");
        let body = format!("3;chunk-signature={s1}\r\nabc\r\n0;chunk-signature={s2}\r\n\r\n");
        assert_eq!(
            &decode(body.as_bytes(), Some(&signer)).unwrap().data[..],
            b"abc"
        );
        let bad = format!("3;chunk-signature={s1}\r\nabd\r\n0;chunk-signature={s2}\r\n\r\n");
        assert!(decode(bad.as_bytes(), Some(&signer)).is_err());
    }
}
