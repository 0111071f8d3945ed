//! Compat: the bridges that make directory buckets behave like S3 for tools that predate them
//! (DESIGN §3.2). Each stage that bridges a difference notes it on the request's record, which
//! counts it in `s3x_proxy_compat_total{kind}` and names it in the access line.

use std::fmt;

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// A request that S3 Express would refuse and the proxy cannot bridge: answered locally with
/// S3's own error, nothing sent upstream.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// A storage class other than `STANDARD` or `EXPRESS_ONEZONE` (400 InvalidStorageClass).
    #[error("The storage class you specified is not valid")]
    StorageClass,
}

/// `x-amz-storage-class`.
const STORAGE_CLASS: HeaderName = HeaderName::from_static("x-amz-storage-class");
/// The one storage class directory buckets hold.
const EXPRESS_ONEZONE: &str = "EXPRESS_ONEZONE";

/// On a directory bucket, `x-amz-storage-class: STANDARD` (duplicity and s3cmd send it on every
/// put) becomes `EXPRESS_ONEZONE`, the only class S3 Express accepts; any other class is refused
/// as S3 refuses it. More than one value is refused too: the proxy decides on this header.
pub fn storage_class(headers: &mut HeaderMap, bridges: &mut Bridges) -> Result<(), CompatError> {
    let mut values = headers.get_all(&STORAGE_CLASS).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(&STORAGE_CLASS) {
            true => Err(CompatError::StorageClass),
            false => Ok(()),
        };
    };
    match value.as_bytes() {
        b"EXPRESS_ONEZONE" => Ok(()),
        b"STANDARD" => {
            headers.insert(STORAGE_CLASS, HeaderValue::from_static(EXPRESS_ONEZONE));
            bridges.add(Bridge::StorageClass);
            Ok(())
        }
        _ => Err(CompatError::StorageClass),
    }
}

/// One difference between S3 Express and what a legacy tool sends, bridged by the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridge {
    /// `Content-MD5` checked by the proxy and replaced with a checksum S3 Express accepts.
    ContentMd5,
    /// ListObjects (v1) translated to ListObjectsV2.
    ListV1,
    /// A listing prefix that does not end in `/`, served by filtering its directory.
    Prefix,
    /// GetBucketLocation answered locally from the zone's region.
    Location,
    /// Path-style on a bare Zonal host, rewritten to the bucket's virtual host.
    PathStyle,
    /// A directory-bucket name on a general-purpose host, sent to its Zonal endpoint.
    GpHost,
    /// `x-amz-storage-class: STANDARD` turned into `EXPRESS_ONEZONE`.
    StorageClass,
}

impl Bridge {
    /// Every bridge, in the order the access line names them.
    pub const ALL: [Bridge; 7] = [
        Bridge::ContentMd5,
        Bridge::ListV1,
        Bridge::Prefix,
        Bridge::Location,
        Bridge::PathStyle,
        Bridge::GpHost,
        Bridge::StorageClass,
    ];

    /// The `kind` label value of `s3x_proxy_compat_total`.
    pub fn kind(self) -> &'static str {
        match self {
            Bridge::ContentMd5 => "content_md5",
            Bridge::ListV1 => "list_v1",
            Bridge::Prefix => "prefix",
            Bridge::Location => "location",
            Bridge::PathStyle => "path_style",
            Bridge::GpHost => "gp_host",
            Bridge::StorageClass => "storage_class",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The bridges one request used (a set; most requests use none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bridges(u8);

impl Bridges {
    /// Notes that `bridge` was used.
    pub fn add(&mut self, bridge: Bridge) {
        self.0 |= bridge.bit();
    }

    /// Whether `bridge` was used.
    pub fn contains(self, bridge: Bridge) -> bool {
        self.0 & bridge.bit() != 0
    }

    /// True when no bridge was used.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bridges used, in [`Bridge::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Bridge> {
        Bridge::ALL.into_iter().filter(move |b| self.contains(*b))
    }
}

/// `-` for none, else the kinds joined by `+` (`list_v1+prefix`).
impl fmt::Display for Bridges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, bridge) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(bridge.kind())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_becomes_express_onezone_and_other_classes_are_refused() {
        let check = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(STORAGE_CLASS, HeaderValue::from_str(v).unwrap());
            }
            let mut bridges = Bridges::default();
            let result = storage_class(&mut headers, &mut bridges).map(|()| {
                let sent: Vec<_> = headers.get_all(&STORAGE_CLASS).iter().cloned().collect();
                (sent, bridges.contains(Bridge::StorageClass))
            });
            result.ok()
        };
        assert_eq!(check(&[]), Some((vec![], false)));
        let express = HeaderValue::from_static(EXPRESS_ONEZONE);
        assert_eq!(check(&["STANDARD"]), Some((vec![express.clone()], true)));
        assert_eq!(check(&["EXPRESS_ONEZONE"]), Some((vec![express], false)));
        for refused in [
            &["GLACIER"][..],
            &["standard"],
            &["REDUCED_REDUNDANCY"],
            &["STANDARD", "GLACIER"],
            &["STANDARD", "STANDARD"],
        ] {
            assert_eq!(check(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn a_set_of_bridges_prints_its_kinds_in_order() {
        let mut used = Bridges::default();
        assert_eq!(used.to_string(), "-");
        used.add(Bridge::Prefix);
        used.add(Bridge::ListV1);
        used.add(Bridge::Prefix);
        assert_eq!(used.to_string(), "list_v1+prefix");
        assert!(used.contains(Bridge::ListV1) && !used.contains(Bridge::Location));
        assert_eq!(used.iter().count(), 2);
        let kinds: Vec<_> = Bridge::ALL.iter().map(|b| b.kind()).collect();
        let mut unique = kinds.clone();
        unique.dedup();
        assert_eq!(kinds.len(), unique.len());
    }
}
