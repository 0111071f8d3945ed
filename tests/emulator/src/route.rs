//! Which endpoint a request reached (from its Host) and which S3 operation it is.

/// The endpoint named by the Host header (or the h2 `:authority`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `BUCKET.s3express[-fips]-ZONE[.dualstack].REGION.amazonaws.com[.cn]`
    Zonal {
        bucket: String,
        zone: String,
        region: String,
    },
    /// `s3express-ZONE.REGION.amazonaws.com` with no bucket label: path-style, unsupported.
    ZonalPathStyle {
        region: String,
    },
    /// `s3express-control[-fips][.dualstack].REGION.amazonaws.com[.cn]`
    Control {
        region: String,
    },
    Unknown(String),
}

impl Endpoint {
    /// The kind recorded in the request log.
    pub fn kind(&self) -> crate::EndpointKind {
        match self {
            Endpoint::Zonal { .. } | Endpoint::ZonalPathStyle { .. } => crate::EndpointKind::Zonal,
            Endpoint::Control { .. } => crate::EndpointKind::Control,
            Endpoint::Unknown(_) => crate::EndpointKind::Unknown,
        }
    }
}

/// The region a zone id's prefix belongs to, where the emulator knows it.
pub(crate) fn zone_region(zone: &str) -> Option<&'static str> {
    let prefix = zone.split('-').next()?;
    Some(match prefix {
        "use1" => "us-east-1",
        "use2" => "us-east-2",
        "usw1" => "us-west-1",
        "usw2" => "us-west-2",
        "afs1" => "af-south-1",
        "ape1" => "ap-east-1",
        "apne1" => "ap-northeast-1",
        "apne2" => "ap-northeast-2",
        "apne3" => "ap-northeast-3",
        "aps1" => "ap-south-1",
        "aps2" => "ap-south-2",
        "apse1" => "ap-southeast-1",
        "apse2" => "ap-southeast-2",
        "cac1" => "ca-central-1",
        "euc1" => "eu-central-1",
        "euc2" => "eu-central-2",
        "eun1" => "eu-north-1",
        "euw1" => "eu-west-1",
        "euw2" => "eu-west-2",
        "euw3" => "eu-west-3",
        "sae1" => "sa-east-1",
        _ => return None,
    })
}

/// The zone id inside a directory bucket name `BASE--ZONE--x-s3`.
pub(crate) fn bucket_zone(bucket: &str) -> Option<&str> {
    let base = bucket.strip_suffix("--x-s3")?;
    let (_, zone) = base.rsplit_once("--")?;
    (!zone.is_empty()).then_some(zone)
}

/// Parses a host (any `:port` is ignored).
pub(crate) fn parse_host(host: &str) -> Endpoint {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
        _ => host,
    };
    let unknown = || Endpoint::Unknown(host.clone());
    let Some(rest) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return unknown();
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let strip_dualstack = |l: &[&str]| -> Option<String> {
        match l {
            [region] => Some(region.to_string()),
            ["dualstack", region] => Some(region.to_string()),
            _ => None,
        }
    };
    if labels[0] == "s3express-control" || labels[0] == "s3express-control-fips" {
        return strip_dualstack(&labels[1..])
            .map_or_else(unknown, |region| Endpoint::Control { region });
    }
    let zone_label = |l: &str| {
        l.strip_prefix("s3express-fips-")
            .or_else(|| l.strip_prefix("s3express-"))
            .map(str::to_string)
    };
    if zone_label(labels[0]).is_some() {
        return strip_dualstack(&labels[1..])
            .map_or_else(unknown, |region| Endpoint::ZonalPathStyle { region });
    }
    if labels.len() >= 3 {
        if let (Some(zone), Some(region)) = (zone_label(labels[1]), strip_dualstack(&labels[2..])) {
            return Endpoint::Zonal {
                bucket: labels[0].to_string(),
                zone,
                region,
            };
        }
    }
    unknown()
}

/// The S3 operation, from method, key, query and headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    CreateSession,
    HeadBucket,
    ListObjectsV2,
    ListMultipartUploads,
    DeleteObjects,
    GetObject,
    HeadObject,
    PutObject,
    CopyObject,
    RenameObject,
    DeleteObject,
    GetObjectAttributes,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListDirectoryBuckets,
    CreateBucket,
    DeleteBucket,
    /// Recognised but not supported by directory buckets (or by the emulator): 501.
    NotImplemented(&'static str),
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateSession => "CreateSession",
            Op::HeadBucket => "HeadBucket",
            Op::ListObjectsV2 => "ListObjectsV2",
            Op::ListMultipartUploads => "ListMultipartUploads",
            Op::DeleteObjects => "DeleteObjects",
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::PutObject => "PutObject",
            Op::CopyObject => "CopyObject",
            Op::RenameObject => "RenameObject",
            Op::DeleteObject => "DeleteObject",
            Op::GetObjectAttributes => "GetObjectAttributes",
            Op::CreateMultipartUpload => "CreateMultipartUpload",
            Op::UploadPart => "UploadPart",
            Op::UploadPartCopy => "UploadPartCopy",
            Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            Op::AbortMultipartUpload => "AbortMultipartUpload",
            Op::ListParts => "ListParts",
            Op::ListDirectoryBuckets => "ListDirectoryBuckets",
            Op::CreateBucket => "CreateBucket",
            Op::DeleteBucket => "DeleteBucket",
            Op::NotImplemented(n) => n,
        }
    }

    /// Operations a ReadOnly session may run.
    pub fn read_only(self) -> bool {
        matches!(
            self,
            Op::GetObject
                | Op::HeadObject
                | Op::ListObjectsV2
                | Op::GetObjectAttributes
                | Op::ListParts
                | Op::ListMultipartUploads
        )
    }

    /// Operations that must be signed with the IAM credentials on the Zonal endpoint.
    pub fn iam_only(self) -> bool {
        matches!(
            self,
            Op::CreateSession | Op::CopyObject | Op::UploadPartCopy
        )
    }
}

/// Decoded query parameters, in order.
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Query {
        let decode = |s: &str| {
            String::from_utf8_lossy(&crate::sigv4::percent_decode(&s.replace('+', " ")))
                .into_owned()
        };
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Bucket subresources a directory bucket's Zonal endpoint does not serve.
const BUCKET_SUBRESOURCES: [&str; 14] = [
    "acl",
    "accelerate",
    "cors",
    "encryption",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "policy",
    "replication",
    "tagging",
    "versioning",
    "website",
    "ownershipControls",
];

/// Classifies a Zonal request (virtual-hosted: the whole path is the key).
pub(crate) fn zonal_op(method: &str, has_key: bool, q: &Query, copy_source: bool) -> Op {
    let unsupported_object = [
        ("tagging", "ObjectTagging"),
        ("acl", "ObjectAcl"),
        ("retention", "ObjectRetention"),
        ("legal-hold", "ObjectLegalHold"),
        ("restore", "RestoreObject"),
        ("select", "SelectObjectContent"),
        ("torrent", "GetObjectTorrent"),
    ];
    if has_key {
        if let Some((_, n)) = unsupported_object.iter().find(|(p, _)| q.has(p)) {
            return Op::NotImplemented(n);
        }
        return match method {
            "GET" if q.has("uploadId") => Op::ListParts,
            "GET" if q.has("attributes") => Op::GetObjectAttributes,
            "GET" => Op::GetObject,
            "HEAD" => Op::HeadObject,
            "PUT" if q.has("partNumber") && q.has("uploadId") && copy_source => Op::UploadPartCopy,
            "PUT" if q.has("partNumber") && q.has("uploadId") => Op::UploadPart,
            "PUT" if q.has("renameObject") => Op::RenameObject,
            "PUT" if copy_source => Op::CopyObject,
            "PUT" => Op::PutObject,
            "POST" if q.has("uploads") => Op::CreateMultipartUpload,
            "POST" if q.has("uploadId") => Op::CompleteMultipartUpload,
            "DELETE" if q.has("uploadId") => Op::AbortMultipartUpload,
            "DELETE" => Op::DeleteObject,
            _ => Op::NotImplemented("Unknown"),
        };
    }
    match method {
        "GET" if q.has("session") => Op::CreateSession,
        "GET" if q.get("list-type") == Some("2") => Op::ListObjectsV2,
        "GET" if q.has("uploads") => Op::ListMultipartUploads,
        "GET" if q.has("versions") => Op::NotImplemented("ListObjectVersions"),
        "GET" if BUCKET_SUBRESOURCES.iter().any(|r| q.has(r)) => Op::NotImplemented("Unknown"),
        "GET" => Op::NotImplemented("ListObjects"),
        "HEAD" => Op::HeadBucket,
        "POST" if q.has("delete") => Op::DeleteObjects,
        _ => Op::NotImplemented("Unknown"),
    }
}

/// Classifies a control-plane request (path-style: `/` or `/BUCKET`).
pub(crate) fn control_op(method: &str, bucket: Option<&str>, q: &Query) -> Op {
    match (method, bucket) {
        ("GET", None) => Op::ListDirectoryBuckets,
        (_, Some(_)) if !q.0.is_empty() => Op::NotImplemented("Unknown"),
        ("PUT", Some(_)) => Op::CreateBucket,
        ("DELETE", Some(_)) => Op::DeleteBucket,
        _ => Op::NotImplemented("Unknown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com:443"),
            Endpoint::Zonal {
                bucket: "b--usw2-az1--x-s3".into(),
                zone: "usw2-az1".into(),
                region: "us-west-2".into()
            }
        );
        assert!(matches!(
            parse_host(
                "b--usw2-az1--x-s3.s3express-fips-usw2-az1.dualstack.us-west-2.amazonaws.com"
            ),
            Endpoint::Zonal { .. }
        ));
        assert_eq!(
            parse_host("s3express-control.us-west-2.amazonaws.com"),
            Endpoint::Control {
                region: "us-west-2".into()
            }
        );
        assert_eq!(
            parse_host("s3express-usw2-az1.us-west-2.amazonaws.com"),
            Endpoint::ZonalPathStyle {
                region: "us-west-2".into()
            }
        );
        assert!(matches!(parse_host("example.com"), Endpoint::Unknown(_)));
        assert_eq!(bucket_zone("my--base--usw2-az1--x-s3"), Some("usw2-az1"));
        assert_eq!(bucket_zone("plain-bucket"), None);
        assert_eq!(zone_region("usw2-lax1-az1"), Some("us-west-2"));
    }

    #[test]
    fn operations() {
        let q = |s: &str| Query::parse(s);
        assert_eq!(
            zonal_op("GET", false, &q("session"), false),
            Op::CreateSession
        );
        assert_eq!(
            zonal_op("GET", false, &q("list-type=2&prefix=a"), false),
            Op::ListObjectsV2
        );
        assert_eq!(
            zonal_op("GET", false, &q(""), false),
            Op::NotImplemented("ListObjects")
        );
        assert_eq!(
            zonal_op("PUT", true, &q("partNumber=1&uploadId=u"), true),
            Op::UploadPartCopy
        );
        assert_eq!(zonal_op("PUT", true, &q(""), true), Op::CopyObject);
        assert_eq!(
            zonal_op("GET", true, &q("tagging"), false),
            Op::NotImplemented("ObjectTagging")
        );
        assert_eq!(q("a=b+c%2B").get("a"), Some("b c+"));
    }
}
