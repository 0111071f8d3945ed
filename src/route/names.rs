//! Validated names: directory bucket names, zone ids, regions, and the zone → region table.

use std::collections::HashMap;
use std::fmt;

/// Why a name was rejected. Every variant is the client's fault (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The bucket name breaks the directory bucket naming rules.
    #[error("the bucket name is not a valid directory bucket name: {0}")]
    InvalidBucketName(&'static str),
    /// The bucket name breaks the general-purpose bucket naming rules.
    #[error("the bucket name is not a valid bucket name: {0}")]
    InvalidGeneralBucketName(&'static str),
    /// The region string is not a plausible AWS region.
    #[error("invalid region")]
    InvalidRegion,
    /// The host names a zone other than the bucket's own.
    #[error("the host names a zone other than the bucket's own")]
    ZoneMismatch,
}

/// A directory bucket name (`base--zone--x-s3`) or a directory access point (`base--zone--xa-s3`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName {
    name: String,
    zone_start: usize,
    zone_end: usize,
}

impl BucketName {
    /// Parses and validates a directory bucket name.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        use NameError::InvalidBucketName as E;
        if !(3..=63).contains(&name.len()) {
            return Err(E("it must be 3 to 63 characters long"));
        }
        let bytes = name.as_bytes();
        if !bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        {
            return Err(E("only lowercase letters, digits and '-' are allowed"));
        }
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(E("it must start and end with a letter or digit"));
        }
        if name.starts_with("xn--") {
            return Err(E("it must not start with 'xn--'"));
        }
        let stem = name
            .strip_suffix("--x-s3")
            .or_else(|| name.strip_suffix("--xa-s3"))
            .ok_or(E("it must end with '--ZONE--x-s3'"))?;
        let sep = stem
            .rfind("--")
            .ok_or(E("it must end with '--ZONE--x-s3'"))?;
        let (zone_start, zone_end) = (sep + 2, stem.len());
        if sep == 0 {
            return Err(E("the base name is empty"));
        }
        ZoneId::parse(&name[zone_start..zone_end]).ok_or(E("the zone id is not valid"))?;
        Ok(Self {
            name: name.to_owned(),
            zone_start,
            zone_end,
        })
    }

    /// True when `label` looks like it was meant to be a directory bucket (ends in `--x-s3`).
    pub fn looks_like_directory_bucket(label: &str) -> bool {
        label.ends_with("--x-s3") || label.ends_with("--xa-s3")
    }

    /// The bucket name as written.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The zone id embedded in the name.
    pub fn zone(&self) -> ZoneId {
        ZoneId(self.name[self.zone_start..self.zone_end].to_owned())
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name)
    }
}

/// A general-purpose bucket name (S3's naming rules: 3–63 lowercase letters, digits, `.` and
/// `-`; starting and ending with a letter or digit; not an IP address; none of the reserved
/// prefixes and suffixes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GeneralBucketName(String);

impl GeneralBucketName {
    /// Parses and validates a general-purpose bucket name.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        use NameError::InvalidGeneralBucketName as E;
        let bytes = name.as_bytes();
        if !(3..=63).contains(&name.len()) {
            return Err(E("it must be 3 to 63 characters long"));
        }
        let allowed =
            |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-');
        if !bytes.iter().all(allowed) {
            return Err(E("only lowercase letters, digits, '.' and '-' are allowed"));
        }
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(E("it must start and end with a letter or digit"));
        }
        if name.contains("..") || name.contains(".-") || name.contains("-.") {
            return Err(E("dots must separate labels"));
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(E("it must not look like an IP address"));
        }
        const PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];
        const SUFFIXES: &[&str] = &[
            "-s3alias",
            "--ol-s3",
            ".mrap",
            "--x-s3",
            "--xa-s3",
            "--table-s3",
        ];
        if PREFIXES.iter().any(|p| name.starts_with(p))
            || SUFFIXES.iter().any(|s| name.ends_with(s))
        {
            return Err(E("it uses a reserved prefix or suffix"));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the name can be a host label (no dots: a TLS wildcard covers one label).
    pub fn virtual_hostable(&self) -> bool {
        !self.0.contains('.')
    }
}

impl fmt::Display for GeneralBucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GeneralBucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An availability zone id such as `usw2-az1` or a Local Zone id such as `usw2-lax1-az1`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ZoneId(String);

impl ZoneId {
    /// Parses a zone id: lowercase alphanumeric segments joined by `-`, of a length the SDK
    /// endpoint rules accept (8, 9, 13, 14 or 20 characters), not starting with `fips-` (the
    /// Zonal host `s3express-fips-abc` is zone `abc` with FIPS, so zone `fips-abc` would send
    /// its requests to another zone's FIPS endpoint).
    pub fn parse(s: &str) -> Option<Self> {
        if s.starts_with("fips-") {
            return None;
        }
        let ok_len = matches!(s.len(), 8 | 9 | 13 | 14 | 20);
        let ok_segments = s.split('-').count() >= 2
            && s.split('-').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        (ok_len && ok_segments).then(|| Self(s.to_owned()))
    }

    /// The zone id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The region the built-in prefix table gives for this zone (`usw2-az1` → `us-west-2`).
    ///
    /// The prefix is an area code, direction letters and a number; each direction letter
    /// stands for a word (`e` east, `w` west, `n` north, `s` south, `c` central), and two
    /// letters combine (`ne` northeast, `se` southeast, `nw` northwest).
    pub fn builtin_region(&self) -> Option<Region> {
        let prefix = self.0.split('-').next()?;
        let digits = prefix.trim_start_matches(|c: char| c.is_ascii_lowercase());
        let letters = &prefix[..prefix.len() - digits.len()];
        if digits.is_empty() || letters.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (area, direction) = letters.split_at(2);
        let word = match direction {
            "e" => "east",
            "w" => "west",
            "n" => "north",
            "s" => "south",
            "c" => "central",
            "ne" => "northeast",
            "nw" => "northwest",
            "se" => "southeast",
            "sw" => "southwest",
            _ => return None,
        };
        Region::parse(&format!("{area}-{word}-{digits}")).ok()
    }
}

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `us-west-2`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Region(String);

impl Region {
    /// Parses a region: lowercase letters, digits and `-`, 4 to 32 characters.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = (4..=32).contains(&s.len())
            && s.contains('-')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| Self(s.to_owned()))
            .ok_or(NameError::InvalidRegion)
    }

    /// Parses a region S3 named in an answer (`x-amz-bucket-region`): it must also have a
    /// region's shape, `[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+` (`eu-west-1`,
    /// `us-gov-west-1`, `us-isob-east-1`), since it becomes part of a host name.
    pub fn parse_learned(s: &str) -> Result<Self, NameError> {
        let region = Self::parse(s)?;
        match region.has_region_shape() {
            true => Ok(region),
            false => Err(NameError::InvalidRegion),
        }
    }

    fn has_region_shape(&self) -> bool {
        let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
        let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        let geo = |p: &str| p.len() == 2 && lower(p);
        let group = |p: &str| p == "gov" || (p.starts_with("iso") && lower(p));
        let parts: Vec<&str> = self.0.split('-').collect();
        match parts[..] {
            [g, name, n] => geo(g) && lower(name) && number(n),
            [g, grp, name, n] => geo(g) && group(grp) && lower(name) && number(n),
            _ => false,
        }
    }

    /// The partition the region is in, from its name: `cn-` is aws-cn, a `-gov-` group
    /// aws-us-gov, an `-iso…-` group one of the ISO partitions, and anything else aws.
    pub fn partition(&self) -> Partition<'_> {
        let mut parts = self.0.split('-');
        let (geo, group) = (parts.next(), parts.next());
        match (geo, group) {
            (Some("cn"), _) => Partition::China,
            (_, Some("gov")) => Partition::UsGov,
            (_, Some(iso)) if iso.starts_with("iso") => Partition::Iso(iso),
            _ => Partition::Aws,
        }
    }

    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DNS suffix of the partition this region is in.
    pub fn dns_suffix(&self) -> &'static str {
        if self.0.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }
}

/// An AWS partition: regions in different partitions share no buckets, credentials or hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition<'a> {
    /// `aws` (`.amazonaws.com`).
    Aws,
    /// `aws-cn` (`.amazonaws.com.cn`).
    China,
    /// `aws-us-gov`.
    UsGov,
    /// An ISO partition, named by the region's group (`iso`, `isob`, …).
    Iso(&'a str),
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `host` matches `pattern`: the same name, or for `*.suffix` any name that ends in
/// `.suffix` with at least one label before it (`--resolve`, `--allow-connect`).
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|head| head.ends_with('.') && head.len() > 1),
        None => pattern.eq_ignore_ascii_case(host),
    }
}

/// How the proxy finds a zone's region: `--zone-region` overrides, then the built-in table,
/// then `--region` as the fallback.
#[derive(Clone, Debug, Default)]
pub struct RegionResolver {
    overrides: HashMap<String, Region>,
    fallback: Option<Region>,
}

impl RegionResolver {
    /// Builds a resolver from the operator's overrides and fallback.
    pub fn new(overrides: HashMap<String, Region>, fallback: Option<Region>) -> Self {
        Self {
            overrides,
            fallback,
        }
    }

    /// The region for a zone, or `None` when nothing knows it.
    pub fn region_for(&self, zone: &ZoneId) -> Option<Region> {
        self.known_region(zone).or_else(|| self.fallback.clone())
    }

    /// The region `--zone-region` or the built-in table gives for a zone (no fallback).
    pub fn known_region(&self, zone: &ZoneId) -> Option<Region> {
        self.overrides
            .get(zone.as_str())
            .cloned()
            .or_else(|| zone.builtin_region())
    }

    /// The fallback region (`--region`), if any.
    pub fn fallback(&self) -> Option<&Region> {
        self.fallback.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_region_must_look_like_one_and_names_its_partition() {
        for (name, partition) in [
            ("us-east-1", Partition::Aws),
            ("eu-west-1", Partition::Aws),
            ("ap-southeast-5", Partition::Aws),
            ("il-central-1", Partition::Aws),
            ("cn-north-1", Partition::China),
            ("cn-northwest-1", Partition::China),
            ("us-gov-west-1", Partition::UsGov),
            ("us-iso-east-1", Partition::Iso("iso")),
            ("us-isob-east-1", Partition::Iso("isob")),
            ("eu-isoe-west-1", Partition::Iso("isoe")),
        ] {
            let region = Region::parse_learned(name).unwrap();
            assert_eq!(region.partition(), partition, "{name}");
        }
        for bad in [
            "evil-region",
            "us-east",
            "useast-1",
            "u-east-1",
            "us-east-1a",
            "us-east-1-",
            "us--east-1",
            "us-evil-east-1",
            "us-east-1.evil.com",
            "US-EAST-1",
            "us-east-01x",
            "",
        ] {
            assert!(Region::parse_learned(bad).is_err(), "{bad}");
        }
        // What routing accepts from a client's own host is a separate, looser question.
        assert!(Region::parse("evil-region").is_ok());
    }

    #[test]
    fn real_directory_bucket_names_parse_with_their_zone() {
        for (name, zone) in [
            ("bucket-base-name--usw2-az1--x-s3", "usw2-az1"),
            ("my--double--dash--use1-az4--x-s3", "use1-az4"),
            ("logs--apne1-az4--x-s3", "apne1-az4"),
            ("edge--usw2-lax1-az1--x-s3", "usw2-lax1-az1"),
            ("ap--usw2-az1--xa-s3", "usw2-az1"),
            ("abc--euw1-az1--x-s3", "euw1-az1"),
        ] {
            let bucket = BucketName::parse(name).unwrap();
            assert_eq!(bucket.zone().as_str(), zone, "{name}");
            assert_eq!(bucket.as_str(), name);
        }
    }

    #[test]
    fn invalid_bucket_names_are_rejected() {
        for name in [
            "",
            "ab",
            "plain-general-purpose-bucket",
            "UPPER--usw2-az1--x-s3",
            "-start--usw2-az1--x-s3",
            "xn--bucket--usw2-az1--x-s3",
            "under_score--usw2-az1--x-s3",
            "--usw2-az1--x-s3",
            "name--usw2--x-s3",
            "name--x-s3",
            "toolongtoolongtoolongtoolongtoolongtoolongtoolong--usw2-az1--x-s3",
            "dots.in.name--usw2-az1--x-s3",
        ] {
            assert!(BucketName::parse(name).is_err(), "{name} should be invalid");
        }
    }

    // Found by `fuzz/` (target `route`, invariant: the upstream host parses back to the
    // endpoint's own zone and flavor): `b--fips-abc--x-s3` was a valid bucket whose Zonal host
    // `b--fips-abc--x-s3.s3express-fips-abc.REGION.amazonaws.com` reads as zone `abc`, FIPS.
    #[test]
    fn zones_that_read_as_a_fips_endpoint_are_invalid() {
        assert!(ZoneId::parse("fips-abc").is_none());
        assert!(ZoneId::parse("fips-usw2-az1").is_none());
        assert!(BucketName::parse("b--fips-abc--x-s3").is_err());
        assert!(BucketName::parse("b--fips-usw2-az1--x-s3").is_err());
        assert!(ZoneId::parse("fipx-abc").is_some());
    }

    #[test]
    fn the_zone_table_matches_the_design_notes() {
        for (zone, region) in [
            ("use1-az4", "us-east-1"),
            ("use2-az1", "us-east-2"),
            ("usw1-az1", "us-west-1"),
            ("usw2-az1", "us-west-2"),
            ("afs1-az1", "af-south-1"),
            ("ape1-az1", "ap-east-1"),
            ("apne1-az4", "ap-northeast-1"),
            ("apne2-az1", "ap-northeast-2"),
            ("apne3-az1", "ap-northeast-3"),
            ("aps1-az1", "ap-south-1"),
            ("aps2-az1", "ap-south-2"),
            ("apse1-az1", "ap-southeast-1"),
            ("apse5-az1", "ap-southeast-5"),
            ("apse7-az1", "ap-southeast-7"),
            ("cac1-az1", "ca-central-1"),
            ("euc1-az1", "eu-central-1"),
            ("euc2-az1", "eu-central-2"),
            ("eun1-az1", "eu-north-1"),
            ("eus1-az1", "eu-south-1"),
            ("eus2-az1", "eu-south-2"),
            ("euw1-az1", "eu-west-1"),
            ("euw2-az1", "eu-west-2"),
            ("euw3-az1", "eu-west-3"),
            ("ilc1-az1", "il-central-1"),
            ("mec1-az1", "me-central-1"),
            ("mes1-az1", "me-south-1"),
            ("mxc1-az1", "mx-central-1"),
            ("sae1-az1", "sa-east-1"),
            ("cnn1-az1", "cn-north-1"),
            ("cnnw1-az1", "cn-northwest-1"),
            ("usw2-lax1-az1", "us-west-2"),
        ] {
            let z = ZoneId::parse(zone).unwrap_or_else(|| panic!("{zone}"));
            assert_eq!(z.builtin_region().unwrap().as_str(), region, "{zone}");
        }
    }

    #[test]
    fn overrides_beat_the_table_and_the_fallback_fills_gaps() {
        let mut overrides = HashMap::new();
        overrides.insert("usw2-az1".into(), Region::parse("us-gov-west-1").unwrap());
        let resolver = RegionResolver::new(overrides, Some(Region::parse("eu-west-1").unwrap()));
        let region = |z: &str| resolver.region_for(&ZoneId::parse(z).unwrap()).unwrap();
        assert_eq!(region("usw2-az1").as_str(), "us-gov-west-1");
        assert_eq!(region("use1-az4").as_str(), "us-east-1");
        assert_eq!(region("zzx9-az1").as_str(), "eu-west-1");
        assert_eq!(
            Region::parse("cn-north-1").unwrap().dns_suffix(),
            "amazonaws.com.cn"
        );
    }
}
