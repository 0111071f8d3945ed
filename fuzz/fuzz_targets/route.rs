//! Routing (`route`) on any request head: method, request target, Host header, HTTP version
//! and the CONNECT target of the tunnel it came through. Beyond "no panic", every accepted
//! request must keep the promises of DESIGN.md §3.1 ("Where credentials may go"):
//! - the upstream host is `[a-z0-9.-]` only and parses back (`AwsHost::parse`) to exactly the
//!   endpoint's bucket, zone, region and flavor;
//! - a Zonal endpoint's bucket is the route's bucket, its zone the one the host names, and a
//!   zone with a known region is served from that region;
//! - the path and query are in canonical form (unreserved characters, `%XX`, `/ ? & =`), and
//!   canonicalising them again changes nothing;
//! - a query naming `session` in any spelling is CreateSession (answered locally) or refused;
//! - a request naming its target explicitly (absolute form, tunnel) only goes to that S3 host's
//!   own kind of endpoint, never to endpoint mode.
//!
//! Input (lines):
//! ```text
//! METHOD
//! request target (origin form, absolute form, `*`, ...)
//! Host header value ("-": no Host header)
//! CONNECT target of the tunnel the request came through ("" or "-": none)
//! options: 2 = HTTP/2, 0 = HTTP/1.0, f = --fips, d = --dualstack,
//!          g = --general-purpose false, r = no --region, z = --zone-region zzx9-az1=eu-west-3,
//!          l = S3 said bucket `logs` is in eu-central-1 and `my.logs` in cn-north-1
//! ```
#![no_main]

use std::collections::HashMap;

use http::{HeaderValue, Method, Uri, Version};
use libfuzzer_sys::fuzz_target;
use s3x_proxy::route::endpoint::{AwsHost, BucketRegions, Endpoint, Flavor};
use s3x_proxy::route::names::{GeneralBucketName, Region, RegionResolver};
use s3x_proxy::route::operation::Operation;
use s3x_proxy::route::{route, split_authority, Route, RouteSettings};
use s3x_proxy::route::uri::{canonical_path, Query};

fn settings(options: &str) -> RouteSettings {
    let region = |s: &str| Region::parse(s).unwrap();
    let mut overrides = HashMap::new();
    if options.contains('z') {
        overrides.insert("zzx9-az1".to_owned(), region("eu-west-3"));
    }
    let fallback = (!options.contains('r')).then(|| region("us-west-2"));
    RouteSettings {
        regions: RegionResolver::new(overrides, fallback),
        flavor: Flavor {
            fips: options.contains('f'),
            dualstack: options.contains('d'),
        },
        endpoint_hosts: vec!["localhost".into(), "proxy.internal".into()],
        general_region: region("us-west-2"),
        general_purpose: !options.contains('g'),
    }
}

/// The host a CONNECT to `target` intercepts, as `server` and `connect` decide it.
fn tunnel_host(target: &[u8], general_purpose: bool) -> Option<Option<String>> {
    if target.is_empty() || target == b"-" {
        return Some(None);
    }
    let authority = http::uri::Authority::try_from(target).ok()?;
    let (host, port) = split_authority(authority.as_str()).ok()?;
    port?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let intercepted = match general_purpose {
        true => AwsHost::is_s3(&host),
        false => AwsHost::is_s3_express(&host),
    };
    intercepted.then_some(Some(host))
}

/// Query keys decoded on their own (form rules: `+` is a space, `%XX` once), not by `Query`.
fn decoded_keys(query: &str) -> Vec<String> {
    query
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or_default().replace('+', " "))
        .map(|key| {
            let (b, mut out, mut i) = (key.as_bytes(), Vec::new(), 0);
            while i < b.len() {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b[i],
                    b.get(i + 1).and_then(|&c| hex(c)),
                    b.get(i + 2).and_then(|&c| hex(c)),
                ) {
                    (b'%', Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    (c, _, _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        })
        .collect()
}

fn names_session(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        decoded_keys(q)
            .iter()
            .any(|k| k.eq_ignore_ascii_case("session"))
    })
}

fn is_canonical(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let upper_hex = |c: &u8| c.is_ascii_digit() || (b'A'..=b'F').contains(c);
        match b[i] {
            c if c.is_ascii_alphanumeric() || b"-._~/?&=".contains(&c) => i += 1,
            b'%' if i + 2 < b.len() && b[i + 1..=i + 2].iter().all(upper_hex) => i += 3,
            _ => return false,
        }
    }
    true
}

fn check(route: &Route, uri: &Uri, explicit: Option<AwsHost<'_>>, settings: &RouteSettings) {
    // The upstream host: rebuilt, plain, and parsing back to the very same endpoint.
    let host = route.endpoint.host();
    assert!(
        host.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
        "upstream host {host:?}"
    );
    let parsed = AwsHost::parse(&host).unwrap_or_else(|| panic!("{host:?} is not an S3 host"));
    match (&route.endpoint, parsed) {
        (
            Endpoint::Zonal {
                bucket,
                region,
                flavor,
            },
            AwsHost::Zonal {
                bucket: b,
                zone: z,
                region: r,
                flavor: f,
            },
        ) => {
            assert_eq!(
                (b, z, r, f),
                (
                    bucket.as_str(),
                    bucket.zone().as_str(),
                    region.as_str(),
                    *flavor
                ),
                "{host:?}"
            );
            assert_eq!(route.bucket.as_ref(), Some(bucket), "the session's bucket");
            if let Some(known) = settings.regions.known_region(&bucket.zone()) {
                assert_eq!(&known, region, "the zone decides the region");
            }
            if let Some(AwsHost::Zonal { bucket: named, .. }) = &explicit {
                assert_eq!(
                    *named,
                    bucket.as_str(),
                    "forward mode keeps the named bucket"
                );
            }
        }
        (
            Endpoint::Control { region, flavor },
            AwsHost::Control {
                region: r,
                flavor: f,
            },
        ) => {
            assert_eq!((r, f), (region.as_str(), *flavor), "{host:?}");
        }
        (
            Endpoint::General {
                bucket,
                region,
                flavor,
            },
            AwsHost::General {
                bucket: b,
                region: r,
                flavor: f,
            },
        ) => {
            let hosted = bucket.as_ref().filter(|b| b.virtual_hostable());
            assert_eq!(
                (b, r, f),
                (hosted.map(|b| b.as_str()), region.as_str(), *flavor),
                "{host:?}"
            );
            assert!(
                route.bucket.is_none(),
                "no session for a general-purpose bucket"
            );
            assert!(settings.general_purpose, "general purpose is off");
        }
        (endpoint, parsed) => panic!("{endpoint:?} is built as {host:?}, read as {parsed:?}"),
    }
    if let Some(named) = &explicit {
        let same_kind = matches!(
            (named, &route.endpoint),
            (
                AwsHost::Zonal { .. },
                Endpoint::Zonal { .. } | Endpoint::Control { .. }
            ) | (AwsHost::Control { .. }, Endpoint::Control { .. })
                | (AwsHost::General { .. }, _)
        );
        assert!(same_kind, "{named:?} routed to {:?}", route.endpoint);
    }

    // The path and query: canonical, and canonical again.
    let pq = &route.path_and_query;
    assert!(pq.starts_with('/'), "{pq:?}");
    assert!(is_canonical(pq) && pq.matches('?').count() <= 1, "{pq:?}");
    let (path, query) = match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq.as_str(), None),
    };
    assert_eq!(canonical_path(path), path);
    if let Some(q) = query {
        assert_eq!(Query::parse(Some(q)).canonical().as_deref(), Some(q));
    }

    // `session`, in any spelling, is only ever CreateSession (answered locally).
    if names_session(uri.query()) || names_session(query) {
        assert_eq!(route.operation, Operation::CreateSession, "{uri} -> {pq}");
    }
    if route.operation == Operation::CreateSession {
        assert!(route.endpoint.is_zonal(), "{uri}");
    }
    let _ = route.bucket_name();
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let mut next = || lines.next().unwrap_or_default();
    let (method, target, host, tunnel, options) = (next(), next(), next(), next(), next());
    let options = String::from_utf8_lossy(options);
    let settings = settings(&options);
    let Ok(method) = Method::from_bytes(method) else {
        return;
    };
    let Ok(uri) = Uri::try_from(target) else {
        return;
    };
    let Some(tunnel) = tunnel_host(tunnel, settings.general_purpose) else {
        return;
    };
    let version = match () {
        _ if options.contains('2') => Version::HTTP_2,
        _ if options.contains('0') => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(uri.clone())
        .version(version);
    if host != b"-" {
        let Ok(value) = HeaderValue::from_bytes(host) else {
            return;
        };
        request = request.header(http::header::HOST, value);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let learned = BucketRegions::default();
    if options.contains('l') {
        for (bucket, region) in [("logs", "eu-central-1"), ("my.logs", "cn-north-1")] {
            let bucket = GeneralBucketName::parse(bucket).unwrap();
            learned.learn(&bucket, Region::parse(region).unwrap());
        }
    }
    let Ok(routed) = route(&parts, tunnel.as_deref(), &settings, &learned) else {
        return;
    };
    // The host the client named as its target, if it named one (tunnel, or HTTP/1 absolute form).
    let absolute = uri.scheme().is_some() && version < Version::HTTP_2;
    let named = match (&tunnel, uri.authority()) {
        (Some(host), _) => Some(host.clone()),
        (None, Some(authority)) if absolute => Some(
            split_authority(authority.as_str())
                .expect("routed, so valid")
                .0,
        ),
        _ => None,
    };
    let explicit = named.as_deref().map(|h| {
        AwsHost::parse(h).unwrap_or_else(|| panic!("explicit target {h:?} is not an S3 host"))
    });
    check(&routed, &uri, explicit, &settings);
});
