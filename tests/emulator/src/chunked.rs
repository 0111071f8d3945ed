//! `Content-Encoding: aws-chunked` decoding, with chained chunk signatures when signed.

use bytes::{Bytes, BytesMut};

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
/// chunk carries a signature chained from the request's seed signature. `corrupt_at` flips the
/// byte at that offset of the decoded data as it arrives, before its chunk's signature is
/// checked (an injected fault).
pub fn decode(
    body: &[u8],
    signer: Option<&ChunkSigner>,
    corrupt_at: Option<usize>,
) -> Result<Decoded, String> {
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
        let mut chunk = std::borrow::Cow::Borrowed(&body[pos..pos + size]);
        if let Some(at) = corrupt_at.and_then(|a| a.checked_sub(data.len())) {
            if at < size {
                chunk.to_mut()[at] ^= 0x01;
            }
        }
        let chunk = chunk.as_ref();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_unsigned_trailer_body() {
        let crc = "DUoRhQ==".to_string();
        let body = format!("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
        let d = decode(body.as_bytes(), None, None).unwrap();
        assert_eq!(&d.data[..], b"hello world");
        assert_eq!(
            d.trailers,
            [("x-amz-checksum-crc32".to_string(), crc.clone())]
        );
    }

    #[test]
    fn rejects_bad_framing() {
        assert!(decode(b"5\r\nhell", None, None).is_err());
        assert!(decode(b"5\r\nhelloXX0\r\n\r\n", None, None).is_err());
        assert!(decode(b"zz\r\n", None, None).is_err());
        assert!(decode(b"0\r\n\r\nextra", None, None).is_err());
        assert!(decode(b"0\r\n", None, None).is_err());
        let empty = decode(b"0\r\n\r\n", None, None).unwrap();
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
            &decode(body.as_bytes(), Some(&signer), None).unwrap().data[..],
            b"abc"
        );
        let bad = format!("3;chunk-signature={s1}\r\nabd\r\n0;chunk-signature={s2}\r\n\r\n");
        assert!(decode(bad.as_bytes(), Some(&signer), None).is_err());
        // Corruption in transit is caught by the chunk signature.
        assert!(decode(body.as_bytes(), Some(&signer), Some(1)).is_err());
    }

    #[test]
    fn corruption_flips_one_decoded_byte() {
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let d = decode(body, None, Some(6)).unwrap();
        assert_eq!(&d.data[..], b"hello vorld");
        let d = decode(body, None, Some(4)).unwrap();
        assert_eq!(&d.data[..], b"helln world");
    }
}
