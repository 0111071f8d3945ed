//! Flexible checksums: the `x-amz-checksum-*` algorithms S3 verifies, and the two the proxy
//! computes itself while a body streams (`--checksum crc32c|crc64nvme`).
//!
//! With `UNSIGNED-PAYLOAD` a body's integrity between the proxy and S3 rests on TLS alone. With
//! `--checksum`, an upload that carries no checksum of its own gets one the proxy computes, so S3
//! verifies what it stores (400 BadDigest, nothing stored, on a mismatch): as a header for a body
//! the proxy holds in memory anyway, as an aws-chunked trailer for a body it streams
//! (`aws_chunked::encode_with_checksum`).

use base64::Engine;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::route::operation::Operation;
use crate::sign::Payload;

/// The checksum algorithms of `x-amz-checksum-*` headers and trailers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// CRC-32 (ISO-HDLC).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

const ALL: [Algorithm; 5] = [
    Algorithm::Crc32,
    Algorithm::Crc32c,
    Algorithm::Crc64Nvme,
    Algorithm::Sha1,
    Algorithm::Sha256,
];

impl Algorithm {
    /// The header (and trailer) name, `x-amz-checksum-crc32c`.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name S3 uses in `x-amz-checksum-algorithm` and XML elements, `CRC32C`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64Nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    /// The algorithm a header or trailer name (any case) stands for.
    pub fn from_header(name: &str) -> Option<Algorithm> {
        let name = name.trim();
        ALL.into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name))
    }

    /// The length of a value: the base64 (padded) of the digest.
    pub fn value_len(self) -> usize {
        let digest: usize = match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64Nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        };
        digest.div_ceil(3) * 4
    }
}

/// The checksums the proxy computes: `--checksum`'s, and CRC-32 where a bridged `Content-MD5`
/// needs one (`content_md5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Computed {
    /// CRC-32: what the proxy adds in place of a `Content-MD5` when `--checksum` names none, and
    /// what DeleteObjects gets.
    Crc32,
    /// CRC-32C: hardware-accelerated (SSE 4.2, ARMv8 CRC), S3's COMPOSITE or FULL_OBJECT.
    Crc32c,
    /// CRC-64/NVME: carry-less multiplication; S3's default for new objects, FULL_OBJECT only.
    Crc64Nvme,
}

impl Computed {
    /// The algorithm as S3 names it.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Computed::Crc32 => Algorithm::Crc32,
            Computed::Crc32c => Algorithm::Crc32c,
            Computed::Crc64Nvme => Algorithm::Crc64Nvme,
        }
    }

    /// The checksum of `data`, base64 as S3 takes it.
    pub fn of(self, data: &[u8]) -> String {
        let mut hasher = Hasher::new(self);
        hasher.update(data);
        hasher.finish()
    }
}

/// `--checksum`: what the proxy adds to uploads that carry no checksum of their own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ChecksumFlag {
    /// Add nothing: bodies without a checksum rest on TLS alone.
    #[default]
    Off,
    /// Add a CRC-32C.
    Crc32c,
    /// Add a CRC-64/NVME.
    Crc64nvme,
}

impl ChecksumFlag {
    /// The checksum to compute, if any.
    pub fn computed(self) -> Option<Computed> {
        match self {
            ChecksumFlag::Off => None,
            ChecksumFlag::Crc32c => Some(Computed::Crc32c),
            ChecksumFlag::Crc64nvme => Some(Computed::Crc64Nvme),
        }
    }
}

/// A running checksum.
#[derive(Clone)]
pub enum Hasher {
    /// CRC-32 so far.
    Crc32(crc32fast::Hasher),
    /// CRC-32C so far.
    Crc32c(u32),
    /// CRC-64/NVME so far.
    Crc64Nvme(crc64fast_nvme::Digest),
}

impl Hasher {
    /// A checksum of nothing yet.
    pub fn new(computed: Computed) -> Self {
        match computed {
            Computed::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
            Computed::Crc32c => Hasher::Crc32c(0),
            Computed::Crc64Nvme => Hasher::Crc64Nvme(crc64fast_nvme::Digest::new()),
        }
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(hasher) => hasher.update(data),
            Hasher::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            Hasher::Crc64Nvme(digest) => digest.write(data),
        }
    }

    /// The value (base64 of the big-endian digest), as S3 takes it in a header or trailer.
    pub fn finish(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            Hasher::Crc32(hasher) => b64.encode(hasher.clone().finalize().to_be_bytes()),
            Hasher::Crc32c(crc) => b64.encode(crc.to_be_bytes()),
            Hasher::Crc64Nvme(digest) => b64.encode(digest.sum64().to_be_bytes()),
        }
    }
}

/// Headers that say a request already carries a checksum (or asks for one) of its own.
fn has_own_checksum(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-amz-checksum-")
            || name == "x-amz-sdk-checksum-algorithm"
            || name == "content-md5"
    })
}

/// Whether `--checksum` adds a checksum to this request, and which.
///
/// Only to a PutObject that carries none of its own (no `x-amz-checksum-*`, no
/// `x-amz-sdk-checksum-algorithm`, no `Content-MD5`, no trailer) and is not an append
/// (`x-amz-write-offset-bytes`): an append's checksum meets the one S3 keeps for the object
/// already written. A client's UploadPart is left alone: S3 refuses a part with a checksum when
/// its CreateMultipartUpload named no algorithm ("Checksum Type mismatch ... expected checksum
/// Type: null"), and an upload created with one needs every part's checksum listed in the
/// client's CompleteMultipartUpload, which the client does not have; the proxy, seeing one
/// request at a time, cannot know how the upload was created. Other bodies (XML documents) are
/// small and S3 takes trailers only on object data. Whether the body is empty is for the caller.
pub fn to_add(
    flag: Option<Computed>,
    operation: Operation,
    headers: &HeaderMap,
    payload: Payload,
) -> Option<Computed> {
    let plain = matches!(payload, Payload::Unsigned | Payload::SignedChunks);
    let append = headers.contains_key("x-amz-write-offset-bytes");
    flag.filter(|_| {
        operation == Operation::PutObject && plain && !append && !has_own_checksum(headers)
    })
}

/// Sets the header `x-amz-checksum-<alg>: <checksum of data>` (for a body held in memory).
pub fn insert_header(headers: &mut HeaderMap, computed: Computed, data: &[u8]) {
    let name = HeaderName::from_static(computed.algorithm().header());
    let value = HeaderValue::from_str(&computed.of(data)).expect("base64 is a valid header value");
    headers.insert(name, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // The check values of "123456789" (the CRC catalogue).
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            Computed::Crc32c.of(b"123456789"),
            b64.encode(0xe306_9283u32.to_be_bytes())
        );
        assert_eq!(
            Computed::Crc64Nvme.of(b"123456789"),
            b64.encode(0xae8b_1486_0a79_9888u64.to_be_bytes())
        );
        assert_eq!(Computed::Crc32c.of(b"hello world"), "yZRlqg==");
        assert_eq!(
            Computed::Crc32.of(b"123456789"),
            b64.encode(0xcbf4_3926u32.to_be_bytes())
        );
        assert_eq!(Computed::Crc32.of(b"hello world"), "DUoRhQ==");
        let mut split = Hasher::new(Computed::Crc64Nvme);
        split.update(b"1234");
        split.update(b"");
        split.update(b"56789");
        assert_eq!(split.finish(), Computed::Crc64Nvme.of(b"123456789"));
    }

    #[test]
    fn names_and_lengths() {
        for a in ALL {
            assert_eq!(Algorithm::from_header(&a.header().to_uppercase()), Some(a));
            assert_eq!(
                a.header().strip_prefix("x-amz-checksum-").unwrap(),
                a.name().to_lowercase()
            );
        }
        assert_eq!(Algorithm::from_header("x-amz-checksum-md5"), None);
        let lens: Vec<usize> = ALL.iter().map(|a| a.value_len()).collect();
        assert_eq!(lens, [8, 8, 12, 28, 44]);
        assert_eq!(Computed::Crc64Nvme.of(b"").len(), 12);
    }

    #[test]
    fn added_only_to_put_object_without_a_checksum_of_its_own() {
        let flag = Some(Computed::Crc32c);
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.insert(*n, HeaderValue::from_static(v));
            }
            h
        };
        let plain = with(&[("content-type", "text/plain")]);
        let put = Operation::PutObject;
        assert_eq!(to_add(flag, put, &plain, Payload::Unsigned), flag);
        assert_eq!(to_add(flag, put, &plain, Payload::SignedChunks), flag);
        assert_eq!(to_add(None, put, &plain, Payload::Unsigned), None);
        assert_eq!(
            to_add(flag, put, &plain, Payload::StreamingUnsignedTrailer),
            None
        );
        for op in [
            Operation::UploadPart,
            Operation::CompleteMultipartUpload,
            Operation::DeleteObjects,
        ] {
            assert_eq!(to_add(flag, op, &plain, Payload::Unsigned), None, "{op:?}");
        }
        for own in [
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("x-amz-write-offset-bytes", "100"),
        ] {
            let h = with(&[own]);
            assert_eq!(to_add(flag, put, &h, Payload::Unsigned), None, "{own:?}");
        }
    }
}
