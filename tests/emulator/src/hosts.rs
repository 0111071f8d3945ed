//! Which endpoint a Host names: Zonal, control plane or general purpose, with bucket and region.

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
    /// General-purpose S3: `[BUCKET.]s3[-fips][.dualstack].REGION.amazonaws.com[.cn]`, or the
    /// global `[BUCKET.]s3.amazonaws.com` (us-east-1). `bucket` is None for path-style hosts.
    GeneralPurpose {
        bucket: Option<String>,
        region: String,
        global: bool,
        /// `amazonaws.com` or `amazonaws.com.cn`.
        domain: &'static str,
    },
    Unknown(String),
}

impl Endpoint {
    /// The kind recorded in the request log.
    pub fn kind(&self) -> crate::EndpointKind {
        match self {
            Endpoint::Zonal { .. } | Endpoint::ZonalPathStyle { .. } => crate::EndpointKind::Zonal,
            Endpoint::Control { .. } => crate::EndpointKind::Control,
            Endpoint::GeneralPurpose { .. } => crate::EndpointKind::GeneralPurpose,
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
        "apse3" => "ap-southeast-3",
        "apse4" => "ap-southeast-4",
        "apse5" => "ap-southeast-5",
        "apse7" => "ap-southeast-7",
        "cac1" => "ca-central-1",
        "euc1" => "eu-central-1",
        "euc2" => "eu-central-2",
        "eun1" => "eu-north-1",
        "eus1" => "eu-south-1",
        "eus2" => "eu-south-2",
        "euw1" => "eu-west-1",
        "euw2" => "eu-west-2",
        "euw3" => "eu-west-3",
        "sae1" => "sa-east-1",
        "ilc1" => "il-central-1",
        "mec1" => "me-central-1",
        "mes1" => "me-south-1",
        "mxc1" => "mx-central-1",
        "cnn1" => "cn-north-1",
        "cnnw1" => "cn-northwest-1",
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
    let (rest, domain) = if let Some(r) = host.strip_suffix(".amazonaws.com") {
        (r, "amazonaws.com")
    } else if let Some(r) = host.strip_suffix(".amazonaws.com.cn") {
        (r, "amazonaws.com.cn")
    } else {
        return unknown();
    };
    let labels: Vec<&str> = rest.split('.').collect();
    if let Some(gp) = general_purpose(&labels, domain) {
        return gp;
    }
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

/// Looks like a region name: `xx-name-N` (letters, dashes, a final number).
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// A general-purpose host, from the labels before `.amazonaws.com[.cn]`.
fn general_purpose(labels: &[&str], domain: &'static str) -> Option<Endpoint> {
    // The service label is the last `s3` or `s3-fips`: bucket names may hold dots.
    let i = labels.iter().rposition(|l| *l == "s3" || *l == "s3-fips")?;
    let (region, global) = match &labels[i + 1..] {
        [] if labels[i] == "s3" && domain == "amazonaws.com" => ("us-east-1".to_string(), true),
        [region] if is_region(region) => (region.to_string(), false),
        ["dualstack", region] if is_region(region) => (region.to_string(), false),
        _ => return None,
    };
    let bucket = labels[..i].join(".");
    Some(Endpoint::GeneralPurpose {
        bucket: (!bucket.is_empty()).then_some(bucket),
        region,
        global,
        domain,
    })
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
    fn general_purpose_hosts() {
        let gp = |bucket: Option<&str>, region: &str, global: bool, domain: &'static str| {
            Endpoint::GeneralPurpose {
                bucket: bucket.map(str::to_string),
                region: region.into(),
                global,
                domain,
            }
        };
        let com = "amazonaws.com";
        assert_eq!(
            parse_host("s3.amazonaws.com"),
            gp(None, "us-east-1", true, com)
        );
        assert_eq!(
            parse_host("my.dotted.bucket.s3.amazonaws.com:443"),
            gp(Some("my.dotted.bucket"), "us-east-1", true, com)
        );
        assert_eq!(
            parse_host("s3.eu-west-1.amazonaws.com"),
            gp(None, "eu-west-1", false, com)
        );
        for h in [
            "b.s3.dualstack.eu-west-1.amazonaws.com",
            "b.s3-fips.eu-west-1.amazonaws.com",
            "b.s3-fips.dualstack.eu-west-1.amazonaws.com",
        ] {
            assert_eq!(parse_host(h), gp(Some("b"), "eu-west-1", false, com), "{h}");
        }
        assert_eq!(
            parse_host("b.s3.cn-north-1.amazonaws.com.cn"),
            gp(Some("b"), "cn-north-1", false, "amazonaws.com.cn")
        );
        // A bucket called s3 on a regional host.
        assert_eq!(
            parse_host("s3.s3.us-west-2.amazonaws.com"),
            gp(Some("s3"), "us-west-2", false, com)
        );
        for h in [
            "s3.amazonaws.com.cn",
            "s3-fips.amazonaws.com",
            "s3.notaregion.amazonaws.com",
            "b.s3.eu-west-1.extra.amazonaws.com",
            "sqs.us-east-1.amazonaws.com",
        ] {
            assert!(matches!(parse_host(h), Endpoint::Unknown(_)), "{h}");
        }
    }
}
