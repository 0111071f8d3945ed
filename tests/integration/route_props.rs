//! Property tests of routing (DESIGN.md §3.1, "Where credentials may go"): generated hosts,
//! buckets, keys and query spellings, checked against what the design promises. A few hundred
//! cases each, so the whole file runs in about a second; `fuzz/` explores the same ground
//! without a time limit.

use std::collections::HashMap;

use proptest::prelude::*;
use s3x_proxy::route::endpoint::{AwsHost, BucketRegions, Endpoint, Flavor};
use s3x_proxy::route::names::{Region, RegionResolver};
use s3x_proxy::route::operation::Operation;
use s3x_proxy::route::{route, Route, RouteError, RouteSettings};

const CASES: u32 = 256;

fn settings() -> RouteSettings {
    let region = |s: &str| Region::parse(s).unwrap();
    let mut overrides = HashMap::new();
    overrides.insert("zzx9-az1".to_owned(), region("eu-west-3"));
    RouteSettings {
        regions: RegionResolver::new(overrides, Some(region("us-west-2"))),
        flavor: Flavor::default(),
        endpoint_hosts: vec!["localhost".into()],
        general_region: region("us-west-2"),
        general_purpose: true,
    }
}

/// A request straight on a listener: no CONNECT tunnel.
const LISTENER: Option<&str> = None;

/// Routes `METHOD target` with an optional Host header; `None` when `http` refuses the head.
fn try_route(method: &str, target: &str, host: Option<&str>) -> Option<Result<Route, RouteError>> {
    let mut request = http::Request::builder().method(method).uri(target);
    if let Some(host) = host {
        request = request.header(http::header::HOST, host);
    }
    let (parts, ()) = request.body(()).ok()?.into_parts();
    Some(route(
        &parts,
        LISTENER,
        &settings(),
        &BucketRegions::default(),
    ))
}

/// Zones and the region each must be served from (built-in table, `--zone-region`).
const ZONES: &[(&str, &str)] = &[
    ("usw2-az1", "us-west-2"),
    ("use1-az4", "us-east-1"),
    ("apne1-az4", "ap-northeast-1"),
    ("euc1-az2", "eu-central-1"),
    ("cnn1-az1", "cn-north-1"),
    ("usw2-lax1-az1", "us-west-2"),
    ("zzx9-az1", "eu-west-3"),
];

/// Regions a client's host may name, right or wrong for the zone.
const HOST_REGIONS: &[&str] = &["us-west-2", "us-east-1", "eu-west-1", "cn-north-1"];

/// A directory bucket name and the index of its zone in `ZONES`.
fn directory_bucket() -> impl Strategy<Value = (String, usize)> {
    (
        "[a-wyz0-9]([a-z0-9-]{0,14}[a-z0-9])?",
        0..ZONES.len(),
        prop::bool::ANY,
    )
        .prop_map(|(base, zone, access_point)| {
            let suffix = if access_point { "xa-s3" } else { "x-s3" };
            (format!("{base}--{}--{suffix}", ZONES[zone].0), zone)
        })
}

/// A general-purpose bucket name without dots (virtual-hostable).
fn general_bucket() -> impl Strategy<Value = String> {
    "[a-wyz][a-z0-9-]{1,20}[a-z0-9]".prop_filter("not a reserved or directory name", |b| {
        !b.starts_with("xn--") && !b.starts_with("sthree-") && !b.contains("--")
    })
}

/// An object key as a client writes it: segments of unreserved, reserved, escaped and
/// non-ASCII characters (never starting with '/': see the JS SDK's `/BUCKET//KEY`).
fn key() -> impl Strategy<Value = String> {
    prop::collection::vec("([a-zA-Z0-9._~!$'()*,;:@-]|%2[0-9A-F]|%C3%A9){1,8}", 1..4)
        .prop_map(|segments| segments.join("/"))
}

/// `session` spelled as a client might hide it: any case, any letters percent-encoded.
fn session_spelling() -> impl Strategy<Value = String> {
    prop::collection::vec((prop::bool::ANY, 0..3u8), 7).prop_map(|choices| {
        "session"
            .chars()
            .zip(choices)
            .map(|(c, (upper, how))| {
                let c = if upper { c.to_ascii_uppercase() } else { c };
                match how {
                    0 => c.to_string(),
                    1 => format!("%{:02X}", c as u32),
                    _ => format!("%{:02x}", c as u32),
                }
            })
            .collect()
    })
}

/// Other query parameters a request may carry beside it.
fn other_param() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "policy",
        "uploads",
        "list-type=2",
        "x-id=GetObject",
        "partNumber=1",
        "uploadId=abc",
        "delete",
        "prefix=a%2Fb",
        "renameObject",
        "versions",
    ])
    .prop_map(str::to_owned)
}

/// `host[:port]` as DESIGN.md §3.1 allows it: `[A-Za-z0-9.-]` or a bracketed IPv6 literal,
/// then an optional numeric port.
fn host_in_grammar(authority: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = authority.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        return inside.parse::<std::net::Ipv6Addr>().is_ok()
            && (after.is_empty() || after.strip_prefix(':').is_some_and(port_ok));
    }
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if port_ok(p) => h,
        _ => authority,
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A Host header with anything outside `[A-Za-z0-9.-]` (and no IPv6 brackets) is 400.
    #[test]
    fn hosts_outside_the_grammar_are_refused(
        host in "[a-zA-Z0-9.-]{0,20}",
        bad in "[^a-zA-Z0-9.:\\[\\]-]",
        at in 0usize..=20,
        port in prop::option::of(0u16..),
        path in "/[a-z0-9-]{0,20}(--usw2-az1--x-s3)?/k",
    ) {
        let at = host.char_indices().map(|(i, _)| i).chain([host.len()]).nth(at).unwrap_or(host.len());
        let mut crafted = host.clone();
        crafted.insert_str(at, &bad);
        if let Some(port) = port {
            crafted.push_str(&format!(":{port}"));
        }
        if let Some(result) = try_route("GET", &path, Some(&crafted)) {
            prop_assert!(
                matches!(result, Err(RouteError::BadHost)),
                "{crafted:?}: {result:?}"
            );
        }
    }

    /// Whatever Host header is accepted is `host[:port]` in the grammar.
    #[test]
    fn accepted_hosts_are_in_the_grammar(
        host in prop_oneof![
            "[ -~]{0,30}",
            "[a-z0-9.-]{1,12}(:[0-9]{0,6})?[ -~]{0,2}",
            "\\[[0-9a-fA-F:.]{0,12}\\][ -~]{0,6}",
        ],
        path in "/[a-z0-9-]{3,8}--usw2-az1--x-s3/k",
    ) {
        if let Some(Ok(_)) = try_route("GET", &path, Some(&host)) {
            prop_assert!(host_in_grammar(&host), "{host:?} was accepted");
        }
    }

    /// An accepted Zonal route's host is rebuilt from the bucket's own zone and that zone's
    /// region, whatever region (or zone) the client's host named.
    #[test]
    fn zonal_hosts_are_rebuilt_from_the_bucket_and_its_zone(
        (bucket, zone) in directory_bucket(),
        host_zone in 0..ZONES.len(),
        host_region in prop::sample::select(HOST_REGIONS),
        key in key(),
    ) {
        let (named_zone, _) = ZONES[host_zone];
        let suffix = if host_region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        let target = format!("http://{bucket}.s3express-{named_zone}.{host_region}.{suffix}/{key}");
        let result = try_route("GET", &target, None).expect("a valid head");
        if host_zone != zone {
            prop_assert!(result.is_err(), "{target}: another bucket's zone was accepted");
            return Ok(());
        }
        let route = result.map_err(|e| TestCaseError::fail(format!("{target}: {e}")))?;
        let (own_zone, region) = ZONES[zone];
        let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        prop_assert_eq!(
            route.endpoint.host(),
            format!("{bucket}.s3express-{own_zone}.{region}.{suffix}")
        );
        prop_assert_eq!(route.endpoint.region().as_str(), region);
        prop_assert_eq!(route.bucket.as_ref().map(|b| b.as_str()), Some(bucket.as_str()));
        let host = route.endpoint.host();
        let parsed = AwsHost::parse(&host);
        let matches_bucket = matches!(
            parsed,
            Some(AwsHost::Zonal { bucket: b, zone: z, .. }) if b == bucket && z == own_zone
        );
        prop_assert!(matches_bucket);
    }

    /// Whatever zone a bucket name carries and whatever the flavor, its Zonal host reads back
    /// (`AwsHost::parse`) to that bucket, zone and flavor.
    #[test]
    fn zonal_hosts_read_back_to_the_buckets_own_zone(
        base in "[a-z0-9]{1,6}",
        zone in "(fips|[a-z0-9]{1,5})(-[a-z0-9]{1,5}){1,3}",
        fips in prop::bool::ANY,
        dualstack in prop::bool::ANY,
    ) {
        let bucket = format!("{base}--{zone}--x-s3");
        let mut settings = settings();
        settings.flavor = Flavor { fips, dualstack };
        let (parts, ()) = http::Request::get(format!("/{bucket}/k"))
            .header(http::header::HOST, "localhost")
            .body(())
            .unwrap()
            .into_parts();
        if let Ok(route) = route(&parts, LISTENER, &settings, &BucketRegions::default()) {
            let host = route.endpoint.host();
            let read_back = matches!(
                AwsHost::parse(&host),
                Some(AwsHost::Zonal { bucket: b, zone: z, flavor: f, .. })
                    if b == bucket && z == zone && f == settings.flavor
            );
            prop_assert!(read_back, "{} reads as {:?}", host, AwsHost::parse(&host));
        }
    }

    /// No spelling of `session`, among other parameters, reaches anything but CreateSession
    /// (answered locally); every other request naming it is refused.
    #[test]
    fn no_spelling_of_session_reaches_another_operation(
        session in session_spelling(),
        value in prop::option::of("[a-z0-9]{0,4}"),
        mut others in prop::collection::vec(other_param(), 0..3),
        at in 0usize..4,
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]),
        (bucket, _) in directory_bucket(),
        general in general_bucket(),
        object in prop::option::of(key()),
        mode in 0..4u8,
    ) {
        let param = match value {
            Some(v) => format!("{session}={v}"),
            None => session.clone(),
        };
        others.insert(at.min(others.len()), param);
        let query = others.join("&");
        let object = object.map(|k| format!("/{k}")).unwrap_or_default();
        let (target, host) = match mode {
            0 => (format!("/{bucket}{object}?{query}"), Some("127.0.0.1:8080".to_owned())),
            1 => (format!("{}?{query}", if object.is_empty() { "/" } else { &object }),
                  Some(format!("{bucket}.localhost"))),
            2 => (format!("http://{bucket}.s3express-usw2-az1.us-west-2.amazonaws.com{object}?{query}"), None),
            _ => (format!("/{general}{object}?{query}"), Some("localhost".to_owned())),
        };
        let Some(result) = try_route(method, &target, host.as_deref()) else {
            return Ok(());
        };
        if let Ok(route) = result {
            prop_assert_eq!(route.operation, Operation::CreateSession, "{} {}", method, target);
            prop_assert!(route.endpoint.is_zonal(), "{} {} -> {:?}", method, target, route.endpoint);
        }
    }

    /// Forward mode (absolute form), a tunnel and endpoint mode (path-style and virtual-host)
    /// agree on the endpoint, operation and path for the same bucket and key.
    #[test]
    fn every_mode_agrees_on_the_endpoint(
        (bucket, zone) in directory_bucket(),
        key in prop::option::of(key()),
        query in prop::option::of(other_param()),
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]),
    ) {
        let (zone_id, region) = ZONES[zone];
        let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
        let zonal = format!("{bucket}.s3express-{zone_id}.{region}.{suffix}");
        let path = key.map(|k| format!("/{k}")).unwrap_or_default();
        let query = query.map(|q| format!("?{q}")).unwrap_or_default();
        let in_bucket = format!("{}{query}", if path.is_empty() { "/" } else { &path });
        let forward = try_route(method, &format!("http://{zonal}{in_bucket}"), None);
        let path_style = try_route(method, &format!("/{bucket}{path}{query}"), Some("localhost:8080"));
        let virtual_host = try_route(method, &in_bucket, Some(&format!("{bucket}.localhost:8080")));
        let mut tunnel_parts = http::Request::builder().method(method).uri(&in_bucket).body(()).unwrap().into_parts().0;
        tunnel_parts.headers.insert(http::header::HOST, zonal.parse().unwrap());
        let tunnel = route(
            &tunnel_parts,
            Some(&zonal),
            &settings(),
            &BucketRegions::default(),
        );
        let summary = |r: Result<Route, RouteError>| {
            r.map(|r| (r.endpoint, r.operation, r.path_and_query, r.bucket)).map_err(|e| e.to_string())
        };
        let forward = summary(forward.expect("valid"));
        prop_assert_eq!(&forward, &summary(path_style.expect("valid")), "path-style");
        prop_assert_eq!(&forward, &summary(virtual_host.expect("valid")), "virtual host");
        prop_assert_eq!(&forward, &summary(tunnel), "tunnel");
        if let Ok((Endpoint::Zonal { bucket: b, .. }, ..)) = &forward {
            prop_assert_eq!(b.as_str(), bucket.as_str());
        }
    }

    /// General-purpose buckets: forward mode and endpoint mode agree too.
    #[test]
    fn general_purpose_modes_agree(
        bucket in general_bucket(),
        key in prop::option::of(key()),
        method in prop::sample::select(vec!["GET", "PUT", "HEAD"]),
    ) {
        let path = key.map(|k| format!("/{k}")).unwrap_or_default();
        let forward = try_route(method, &format!("http://{bucket}.s3.us-west-2.amazonaws.com{path}"), None);
        let path_style = try_route(method, &format!("/{bucket}{path}"), Some("localhost"));
        let virtual_host = try_route(method, if path.is_empty() { "/" } else { &path }, Some(&format!("{bucket}.localhost")));
        let summary = |r: Option<Result<Route, RouteError>>| {
            r.expect("valid").map(|r| (r.endpoint, r.operation, r.path_and_query)).map_err(|e| e.to_string())
        };
        let forward = summary(forward);
        prop_assert_eq!(&forward, &summary(path_style));
        prop_assert_eq!(&forward, &summary(virtual_host));
    }
}

/// A query key: a subresource of some operation or a modifier, in any case, maybe escaped.
fn query_key() -> impl Strategy<Value = String> {
    let names: Vec<&str> = s3x_proxy::route::operation::SUBRESOURCES
        .iter()
        .copied()
        .chain([
            "prefix",
            "versionId",
            "partNumber",
            "select-type",
            "x-id",
            "max-keys",
            "response-content-type",
            "continuation-token",
            "upload-id-marker",
        ])
        .collect();
    (prop::sample::select(names), 0..4u8).prop_map(|(name, how)| match how {
        0 | 1 => name.to_owned(),
        2 => name.to_ascii_uppercase(),
        _ => name.bytes().map(|b| format!("%{b:02X}")).collect(),
    })
}

/// How many of `keys` (as sent) name an operation's subresource, read as S3 might read them.
fn subresources_named(keys: &[String]) -> usize {
    keys.iter()
        .filter(|key| {
            let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            s3x_proxy::route::operation::SUBRESOURCES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&decoded))
        })
        .count()
}

/// The bucket of a copy source as one reading of S3 would take it (`None`: S3 refuses it).
/// `raw_split`: split at the first `/` as sent, then decode; `strip_all`: drop every leading
/// slash; `normalise`: resolve `.` and `..` segments and collapse `//` before splitting.
fn s3_reading(raw: &str, raw_split: bool, strip_all: bool, normalise: bool) -> Option<String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|s| s.into_owned())
    };
    let path = raw.split('?').next().unwrap_or_default();
    let path = match strip_all {
        true => path.trim_start_matches('/'),
        false => path.strip_prefix('/').unwrap_or(path),
    };
    let mut text = match raw_split {
        true => path.to_owned(),
        false => decode(path)?,
    };
    if normalise {
        let mut kept: Vec<&str> = Vec::new();
        for segment in text.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    kept.pop();
                }
                s => kept.push(s),
            }
        }
        text = kept.join("/");
    }
    let (bucket, key) = text.split_once('/')?;
    let bucket = if raw_split {
        decode(bucket)?
    } else {
        bucket.to_owned()
    };
    (!bucket.is_empty() && !key.is_empty()).then_some(bucket)
}

/// A copy source as a client (or an attacker) might write it.
fn copy_source_value() -> impl Strategy<Value = String> {
    let bucket = prop::sample::select(vec![
        "shared--usw2-az1--x-s3",
        "bob--usw2-az1--x-s3",
        "gp-data",
        "sh%61red--usw2-az1--x-s3",
        "Bob--usw2-az1--x-s3",
        "",
    ]);
    let part = prop_oneof![
        3 => prop::sample::select(vec!["..", "%2E%2E", ".", "%2e"]),
        3 => prop::sample::select(vec!["bob--usw2-az1--x-s3", "src"]),
        1 => prop::sample::select(vec!["", "a%3Fb", "%2F", "%C3%A9"]),
    ];
    let separator = prop::sample::select(vec!["/", "/", "%2F", "%2f", "//"]);
    (
        prop::sample::select(vec!["", "/", "//", "%2F", "/%2F"]),
        bucket,
        prop::collection::vec((separator, part), 1..5),
        prop::sample::select(vec![
            "",
            "?versionId=1",
            "?versionId=",
            "?x",
            "?versionId=a/../b",
        ]),
    )
        .prop_map(|(lead, bucket, parts, tail)| {
            let mut out = format!("{lead}{bucket}");
            for (sep, part) in parts {
                out.push_str(sep);
                out.push_str(part);
            }
            out.push_str(tail);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A query that routes names at most one operation's subresource; one that names two (in
    /// any case or spelling) is refused.
    #[test]
    fn a_routed_query_names_at_most_one_subresource(
        keys in prop::collection::vec(query_key(), 0..4),
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]),
        (bucket, _) in directory_bucket(),
        general in general_bucket(),
        object in prop::option::of(key()),
        on_general in prop::bool::ANY,
    ) {
        let query: Vec<String> = keys.iter().map(|k| format!("{k}=1")).collect();
        let object = object.map(|k| format!("/{k}")).unwrap_or_default();
        let bucket = if on_general { general } else { bucket };
        let target = format!("/{bucket}{object}?{}", query.join("&"));
        let Some(result) = try_route(method, &target, Some("localhost")) else {
            return Ok(());
        };
        let named = subresources_named(&keys);
        match result {
            Ok(route) => prop_assert!(named <= 1, "{} {} -> {:?}", method, target, route.operation),
            Err(RouteError::MixedSubresources(_)) => prop_assert!(named >= 2, "{target}"),
            Err(_) => {}
        }
        if named >= 2 {
            prop_assert!(try_route(method, &target, Some("localhost")).unwrap().is_err());
        }
    }

}

proptest! {
    // A pure function: many more cases cost little.
    #![proptest_config(ProptestConfig::with_cases(CASES * 16))]

    /// The bucket the proxy authorises for a copy source is the one S3 reads; and however else
    /// a server might read it (split before decoding, every leading slash dropped, the path
    /// normalised), it reads that bucket or refuses.
    #[test]
    fn a_copy_source_names_one_bucket_however_it_is_read(raw in copy_source_value()) {
        let Ok(parsed) = s3x_proxy::admit::copy_source::parse(&raw) else {
            return Ok(());
        };
        let documented = s3_reading(&raw, false, false, false);
        prop_assert_eq!(documented.as_deref(), Some(parsed.bucket.as_str()), "{}", raw);
        for (raw_split, strip_all, normalise) in [
            (true, false, false),
            (false, true, false),
            (true, true, false),
            (false, false, true),
            (true, true, true),
        ] {
            if let Some(bucket) = s3_reading(&raw, raw_split, strip_all, normalise) {
                let valid = s3x_proxy::route::names::GeneralBucketName::parse(&bucket).is_ok()
                    || s3x_proxy::route::names::BucketName::parse(&bucket).is_ok();
                prop_assert!(
                    bucket == parsed.bucket || !valid,
                    "{} is read as {} by ({}, {}, {}), authorised as {}",
                    raw, bucket, raw_split, strip_all, normalise, parsed.bucket
                );
            }
        }
        // Written back as clients write it, it reads the same.
        let key: String = percent_encoding::utf8_percent_encode(&parsed.key, percent_encoding::NON_ALPHANUMERIC).collect();
        let again = s3x_proxy::admit::copy_source::parse(&format!("/{}/{key}", parsed.bucket)).unwrap();
        prop_assert_eq!((again.bucket, again.key), (parsed.bucket, parsed.key));
    }
}
