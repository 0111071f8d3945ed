//! Flexible checksums: CRC32, CRC32C, CRC64NVME, SHA-1 and SHA-256, as `x-amz-checksum-*` values.

use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::auth::Head;
use crate::error::{Result, S3Error};

/// The checksum headers (and trailers) S3 takes.
pub(crate) const HEADERS: [&str; 5] = [
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
];

/// The raw checksum named by header `name` over `data`; None for a name that is not one.
pub(crate) fn digest(name: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match name {
        "x-amz-checksum-crc32" => crc32fast::hash(data).to_be_bytes().to_vec(),
        "x-amz-checksum-crc32c" => crc32c::crc32c(data).to_be_bytes().to_vec(),
        "x-amz-checksum-crc64nvme" => {
            let mut d = crc64fast_nvme::Digest::new();
            d.write(data);
            d.sum64().to_be_bytes().to_vec()
        }
        "x-amz-checksum-sha1" => Sha1::digest(data).to_vec(),
        "x-amz-checksum-sha256" => Sha256::digest(data).to_vec(),
        _ => return None,
    })
}

/// Base64 of the checksum named by header `name` over `data`.
pub(crate) fn compute(name: &str, data: &[u8]) -> Option<String> {
    digest(name, data).map(|d| base64::engine::general_purpose::STANDARD.encode(d))
}

/// The algorithm name S3 uses in XML (`CRC64NVME`) for a header name.
pub(crate) fn algorithm(name: &str) -> String {
    name.trim_start_matches("x-amz-checksum-").to_uppercase()
}

/// Checks a claimed checksum: 400 InvalidRequest when the value is not a checksum of that
/// algorithm at all, 400 BadDigest when it does not match the data.
pub(crate) fn verify(name: &str, claimed: &str, data: &[u8]) -> Result<()> {
    let Some(actual) = digest(name, data) else {
        return Err(S3Error::invalid_request(format!(
            "{name} is not a checksum algorithm S3 supports."
        )));
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(claimed.trim());
    if decoded.as_ref().map_or(true, |d| d.len() != actual.len()) {
        return Err(S3Error::invalid_request(format!(
            "Value for {name} header is invalid."
        )));
    }
    if decoded.as_deref() != Ok(actual.as_slice()) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&actual);
        return Err(S3Error::new(
            400,
            "BadDigest",
            format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm(name)
            ),
        )
        .with("ClientComputedChecksum", claimed)
        .with("S3ComputedChecksum", b64));
    }
    Ok(())
}

/// The checksum a multipart upload asked for at its creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UploadChecksum {
    /// The header name, `x-amz-checksum-crc32` ...
    pub name: &'static str,
    /// FULL_OBJECT (a checksum of the whole object) rather than COMPOSITE (a checksum of the
    /// parts' checksums, with `-N`).
    pub full_object: bool,
}

impl UploadChecksum {
    /// From CreateMultipartUpload's `x-amz-checksum-algorithm` and `x-amz-checksum-type`
    /// (COMPOSITE by default; CRC64NVME is FULL_OBJECT only, SHA ones COMPOSITE only).
    pub fn from_request(head: &Head) -> Result<Option<UploadChecksum>> {
        let kind = head.get("x-amz-checksum-type");
        let Some(alg) = head.get("x-amz-checksum-algorithm") else {
            if kind.is_some() {
                return Err(S3Error::invalid_request(
                    "x-amz-checksum-type needs x-amz-checksum-algorithm.",
                ));
            }
            return Ok(None);
        };
        let name = HEADERS
            .iter()
            .find(|h| algorithm(h).eq_ignore_ascii_case(alg.trim()))
            .ok_or_else(|| {
                S3Error::invalid_request(format!("Checksum algorithm {alg:?} is not supported."))
            })?;
        let crc64 = *name == "x-amz-checksum-crc64nvme";
        let sha = name.contains("sha");
        let full_object = match kind.map(str::to_ascii_uppercase).as_deref() {
            None => crc64,
            Some("FULL_OBJECT") if !sha => true,
            Some("COMPOSITE") if !crc64 => false,
            Some(other) => {
                return Err(S3Error::invalid_request(format!(
                    "The checksum type {other} cannot be used with {}.",
                    algorithm(name)
                )))
            }
        };
        Ok(Some(UploadChecksum { name, full_object }))
    }

    /// `FULL_OBJECT` or `COMPOSITE`.
    pub fn type_name(&self) -> &'static str {
        if self.full_object {
            "FULL_OBJECT"
        } else {
            "COMPOSITE"
        }
    }

    /// A part's checksum: the one it was sent (and verified) with, else computed.
    pub fn part_value(&self, data: &[u8], sent: &[(String, String)]) -> (String, String) {
        let value = sent
            .iter()
            .find(|(n, _)| n == self.name)
            .map(|(_, v)| v.clone())
            .or_else(|| compute(self.name, data))
            .unwrap_or_default();
        (self.name.to_string(), value)
    }

    /// The object's checksum from its parts' checksums (base64) and its whole data.
    pub fn object_value(&self, part_values: &[&str], whole: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        if self.full_object {
            return compute(self.name, whole).unwrap_or_default();
        }
        let mut joined = Vec::new();
        for v in part_values {
            joined.extend(b64.decode(v).unwrap_or_default());
        }
        let inner = compute(self.name, &joined).unwrap_or_default();
        format!("{inner}-{}", part_values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let c = |n: &str, d: &[u8]| compute(&format!("x-amz-checksum-{n}"), d).unwrap();
        assert_eq!(c("crc32", b"hello world"), "DUoRhQ==");
        assert_eq!(c("crc32c", b"hello world"), "yZRlqg==");
        // The CRC-64/NVME check value of "123456789" is 0xae8b14860a799888.
        let check =
            base64::engine::general_purpose::STANDARD.encode(0xae8b14860a799888u64.to_be_bytes());
        assert_eq!(c("crc64nvme", b"123456789"), check);
        assert_eq!(c("sha1", b"abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(
            c("sha256", b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(algorithm("x-amz-checksum-crc64nvme"), "CRC64NVME");
    }

    #[test]
    fn verification_errors() {
        let ok = compute("x-amz-checksum-crc64nvme", b"data").unwrap();
        assert!(verify("x-amz-checksum-crc64nvme", &ok, b"data").is_ok());
        let bad = verify("x-amz-checksum-crc64nvme", &ok, b"datb").unwrap_err();
        assert_eq!(bad.code, "BadDigest");
        let malformed = verify("x-amz-checksum-crc32", "not base64!", b"data").unwrap_err();
        assert_eq!(malformed.code, "InvalidRequest");
        let wrong_length = verify("x-amz-checksum-crc32", &ok, b"data").unwrap_err();
        assert_eq!(wrong_length.code, "InvalidRequest");
        assert!(verify("x-amz-checksum-md5", "AAAA", b"data").is_err());
    }

    #[test]
    fn multipart_checksums() {
        let head = |h: &[(&str, &str)]| Head {
            method: "POST".into(),
            raw_path: "/k".into(),
            raw_query: "uploads".into(),
            headers: h
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let alg = "x-amz-checksum-algorithm";
        let kind = "x-amz-checksum-type";
        assert_eq!(UploadChecksum::from_request(&head(&[])).unwrap(), None);
        let crc32 = UploadChecksum::from_request(&head(&[(alg, "CRC32")]))
            .unwrap()
            .unwrap();
        assert!(!crc32.full_object);
        let crc64 = UploadChecksum::from_request(&head(&[(alg, "crc64nvme")]))
            .unwrap()
            .unwrap();
        assert!(crc64.full_object);
        assert!(
            UploadChecksum::from_request(&head(&[(alg, "SHA256"), (kind, "FULL_OBJECT")])).is_err()
        );
        assert!(
            UploadChecksum::from_request(&head(&[(alg, "CRC64NVME"), (kind, "COMPOSITE")]))
                .is_err()
        );
        assert!(UploadChecksum::from_request(&head(&[(alg, "MD5")])).is_err());
        assert!(UploadChecksum::from_request(&head(&[(kind, "COMPOSITE")])).is_err());
        // COMPOSITE: the checksum of the parts' raw checksums, then -N.
        let (p1, p2) = (b"hello ".as_slice(), b"world".as_slice());
        let v1 = crc32.part_value(p1, &[]).1;
        let v2 = crc32.part_value(p2, &[]).1;
        let mut raw = digest(crc32.name, p1).unwrap();
        raw.extend(digest(crc32.name, p2).unwrap());
        let expected = format!("{}-2", compute(crc32.name, &raw).unwrap());
        assert_eq!(crc32.object_value(&[&v1, &v2], b"hello world"), expected);
        // FULL_OBJECT: the checksum of the whole object.
        assert_eq!(
            crc64.object_value(&["x", "y"], b"hello world"),
            compute(crc64.name, b"hello world").unwrap()
        );
    }
}
