//! Tests of `route.rs`: real client requests, and an attacker's Host headers and queries.

use super::*;
use crate::route::operation::Operation::*;

fn parts(method: &str, uri: &str, host: Option<&str>) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    if let Some(h) = host {
        b = b.header("host", h);
    }
    b.body(()).unwrap().into_parts().0
}

/// A request straight on a listener: no CONNECT tunnel.
const LISTENER: Option<&str> = None;

fn settings() -> RouteSettings {
    RouteSettings {
        regions: RegionResolver::new(
            Default::default(),
            Some(Region::parse("us-west-2").unwrap()),
        ),
        flavor: Flavor::default(),
        endpoint_hosts: vec!["localhost".into()],
        general_region: Region::parse("us-west-2").unwrap(),
        general_purpose: true,
    }
}

fn route_(
    parts: &Parts,
    tunnel: Option<&str>,
    settings: &RouteSettings,
) -> Result<Route, RouteError> {
    route(parts, tunnel, settings, &BucketRegions::default())
}

fn ok(method: &str, uri: &str, host: Option<&str>) -> Route {
    route_(&parts(method, uri, host), LISTENER, &settings()).unwrap()
}

fn err(method: &str, uri: &str, host: Option<&str>) -> RouteError {
    route_(&parts(method, uri, host), LISTENER, &settings()).unwrap_err()
}

const ZONAL: &str = "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";

#[test]
fn forward_mode_rebuilds_the_zonal_host() {
    let r = ok(
        "GET",
        &format!("http://{ZONAL}/dir/key?x-id=GetObject"),
        None,
    );
    assert_eq!(r.operation, GetObject);
    assert_eq!(r.endpoint.host(), ZONAL);
    assert_eq!(r.path_and_query, "/dir/key?x-id=GetObject");
}

#[test]
fn the_zone_decides_the_region_whatever_region_the_host_names() {
    // The aws CLI with no region configured builds this host.
    let host = "b--usw2-az1--x-s3.s3express-usw2-az1.us-east-1.amazonaws.com";
    let r = ok("GET", &format!("http://{host}/k"), None);
    assert_eq!(r.endpoint.region().as_str(), "us-west-2");
    assert_eq!(r.endpoint.host(), ZONAL);
}

#[test]
fn a_zone_the_table_does_not_know_takes_the_hosts_region() {
    let host = "b--zzx9-az1--x-s3.s3express-zzx9-az1.eu-west-3.amazonaws.com";
    let r = ok("GET", &format!("http://{host}/k"), None);
    assert_eq!(r.endpoint.region().as_str(), "eu-west-3");
}

#[test]
fn crafted_hosts_are_refused_and_never_become_the_upstream() {
    for host in [
        "b--usw2-az1--x-s3.s3express-x@localhost:9999/.us-west-2.amazonaws.com",
        "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com:notaport",
        "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com:1:2",
        "localhost:99999",
        "a b",
        "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com\\@evil",
        "[not-ipv6]:80",
        "",
    ] {
        let e = route_(&parts("GET", "/k", Some(host)), LISTENER, &settings());
        assert!(
            matches!(e, Err(RouteError::BadHost | RouteError::MissingHost)),
            "{host:?}: {e:?}"
        );
    }
    // A zone in the host that is not the bucket's own.
    let host = "b--usw2-az1--x-s3.s3express-usw2-az2.us-west-2.amazonaws.com";
    assert!(matches!(
        err("GET", &format!("http://{host}/k"), None),
        RouteError::InvalidName(NameError::ZoneMismatch)
    ));
    // Userinfo in an absolute-form authority.
    assert!(matches!(
        err("GET", &format!("http://user@{ZONAL}/k"), None),
        RouteError::BadHost
    ));
}

#[test]
fn ipv6_endpoints_are_accepted() {
    let r = ok("GET", "/b--usw2-az1--x-s3/k", Some("[::1]:8080"));
    assert_eq!(r.endpoint.host(), ZONAL);
}

#[test]
fn endpoint_mode_path_style_and_virtual_host() {
    let r = ok("PUT", "/b--use1-az4--x-s3/a/b%20c", Some("127.0.0.1:8080"));
    assert_eq!(r.operation, PutObject);
    assert_eq!(
        r.endpoint.host(),
        "b--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com"
    );
    assert_eq!(r.path_and_query, "/a/b%20c");
    let r = ok(
        "GET",
        "/?list-type=2",
        Some("b--use1-az4--x-s3.localhost:8080"),
    );
    assert_eq!(
        (r.operation, r.path_and_query.as_str()),
        (ListObjectsV2, "/?list-type=2")
    );
    let r = ok("GET", "/b--use1-az4--x-s3?session", Some("127.0.0.1"));
    assert_eq!(r.operation, CreateSession);
}

#[test]
fn the_js_sdks_double_slash_after_the_bucket_is_one_slash() {
    let r = ok(
        "PUT",
        "/b--usw2-az1--x-s3//js/small.bin",
        Some("127.0.0.1:8080"),
    );
    assert_eq!(
        (r.operation, r.path_and_query.as_str()),
        (PutObject, "/js/small.bin")
    );
    let r = ok(
        "GET",
        "/b--usw2-az1--x-s3//?session=",
        Some("127.0.0.1:8080"),
    );
    assert_eq!(r.operation, CreateSession);
    // Only right after the bucket: a key's own double slashes are kept.
    let r = ok("GET", "/b--usw2-az1--x-s3/a//b", Some("127.0.0.1:8080"));
    assert_eq!(r.path_and_query, "/a//b");
}

#[test]
fn every_spelling_of_the_session_subresource_is_caught() {
    for query in [
        "session",
        "%73ession",
        "x-id=CreateSession&%73ession",
        "%73%65%73%73%69%6f%6e=",
        "SESSION",
    ] {
        let r = ok("GET", &format!("http://{ZONAL}/?{query}"), None);
        assert_eq!(r.operation, CreateSession, "{query}");
    }
    for (method, path) in [
        ("GET", "/key?%73ession"),
        ("PUT", "/?session"),
        ("GET", "/k?x=1&Session"),
    ] {
        assert!(
            matches!(
                err(method, &format!("http://{ZONAL}{path}"), None),
                RouteError::SessionSubresource
            ),
            "{method} {path}"
        );
    }
    // Beside another operation's subresource, it is refused as any such mix is.
    assert!(matches!(
        err("GET", &format!("http://{ZONAL}/?policy&%73ession"), None),
        RouteError::MixedSubresources(_)
    ));
}

#[test]
fn classification_sees_the_decoded_query_that_is_sent() {
    let r = ok("GET", &format!("http://{ZONAL}/?%70olicy"), None);
    assert_eq!(r.operation, GetBucketPolicy);
    assert_eq!(r.path_and_query, "/b--usw2-az1--x-s3?policy");
    assert_eq!(
        r.endpoint.host(),
        "s3express-control.us-west-2.amazonaws.com"
    );
}

#[test]
fn control_plane_operations_go_to_the_control_host_in_every_mode() {
    // Forward mode (s3cmd's `info`), a tunnel, endpoint mode.
    let tunnel = Some(ZONAL);
    let via_tunnel = route_(&parts("GET", "/?policy", Some(ZONAL)), tunnel, &settings()).unwrap();
    let forward = ok("GET", &format!("http://{ZONAL}/?policy"), None);
    let endpoint = ok("GET", "/b--usw2-az1--x-s3?policy", Some("127.0.0.1"));
    for r in [via_tunnel, forward, endpoint] {
        assert_eq!(r.operation, GetBucketPolicy);
        assert_eq!(
            r.endpoint.host(),
            "s3express-control.us-west-2.amazonaws.com"
        );
        assert_eq!(r.path_and_query, "/b--usw2-az1--x-s3?policy");
    }
    let r = ok("PUT", "/b--use1-az4--x-s3", Some("127.0.0.1"));
    assert_eq!(
        (r.operation, r.endpoint.host().as_str()),
        (CreateBucket, "s3express-control.us-east-1.amazonaws.com")
    );
    let r = ok("GET", "/", Some("127.0.0.1"));
    assert_eq!(
        (r.operation, r.endpoint.host().as_str()),
        (
            ListDirectoryBuckets,
            "s3express-control.us-west-2.amazonaws.com"
        )
    );
}

#[test]
fn general_purpose_buckets_route_to_their_regional_host() {
    let r = ok("GET", "http://logs.s3.eu-west-1.amazonaws.com/a/b", None);
    assert_eq!(r.endpoint.host(), "logs.s3.eu-west-1.amazonaws.com");
    assert_eq!(
        (r.operation, r.path_and_query.as_str()),
        (GetObject, "/a/b")
    );
    assert_eq!(r.endpoint.service(), "s3");
    let r = ok("GET", "http://s3.amazonaws.com/logs/a", None);
    assert_eq!(r.endpoint.host(), "logs.s3.us-east-1.amazonaws.com");
    assert_eq!(r.path_and_query, "/a");
    let r = ok("PUT", "/my.logs/k", Some("127.0.0.1:8080"));
    assert_eq!(r.endpoint.host(), "s3.us-west-2.amazonaws.com");
    assert_eq!(r.path_and_query, "/my.logs/k");
    let r = ok("GET", "/?list-type=2", Some("logs.localhost:8080"));
    assert_eq!(r.endpoint.host(), "logs.s3.us-west-2.amazonaws.com");
    // A host that is not one of --endpoint-host is the proxy's own name: path-style.
    let r = ok("GET", "/backups/k", Some("s3x-proxy.default.svc:8080"));
    assert_eq!(r.endpoint.host(), "backups.s3.us-west-2.amazonaws.com");
    assert_eq!(r.path_and_query, "/k");
}

#[test]
fn a_learned_bucket_region_beats_the_hosts() {
    let learned = BucketRegions::default();
    learned.learn(
        &GeneralBucketName::parse("logs").unwrap(),
        Region::parse("ap-south-1").unwrap(),
    );
    let p = parts("GET", "http://logs.s3.amazonaws.com/a", None);
    let r = route(&p, LISTENER, &settings(), &learned).unwrap();
    assert_eq!(r.endpoint.host(), "logs.s3.ap-south-1.amazonaws.com");
    let p = parts("GET", "/logs/a", Some("127.0.0.1"));
    let r = route(&p, LISTENER, &settings(), &learned).unwrap();
    assert_eq!(r.endpoint.region().as_str(), "ap-south-1");
}

#[test]
fn general_purpose_can_be_turned_off() {
    let mut off = settings();
    off.general_purpose = false;
    let e = route_(
        &parts("GET", "http://s3.amazonaws.com/logs/a", None),
        LISTENER,
        &off,
    );
    assert!(matches!(e, Err(RouteError::GeneralPurposeOff(_))));
}

#[test]
fn bad_names_and_foreign_hosts_are_refused() {
    let bad = "http://Bad_Name--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com/k";
    assert!(matches!(err("GET", bad, None), RouteError::BadHost));
    let bad = "http://bad--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com/k";
    assert!(route_(&parts("GET", bad, None), LISTENER, &settings()).is_ok());
    assert!(matches!(
        err("GET", "http://example.com/index.html", None),
        RouteError::NotS3Host(_)
    ));
    assert!(matches!(
        err("GET", "http://sts.amazonaws.com/", None),
        RouteError::NotS3Host(_)
    ));
    assert!(matches!(
        err("GET", "/Invalid_Bucket/k", Some("127.0.0.1")),
        RouteError::InvalidName(_)
    ));
}

#[test]
fn tunnel_requests_route_by_the_connect_host() {
    let tunnel = Some(ZONAL);
    let r = route_(&parts("HEAD", "/k", None), tunnel, &settings()).unwrap();
    assert_eq!(r.operation, HeadObject);
    assert_eq!(r.endpoint.host(), ZONAL);
}

// Found by `fuzz/` (target `authority`): text after a bracketed IPv6 literal was dropped, so
// `Host: [::1]@evil.example` was accepted as `[::1]` instead of refused like any other host
// outside the grammar.
#[test]
fn only_a_port_may_follow_an_ipv6_literal() {
    for host in [
        "[::1]junk",
        "[::1]@evil.example",
        "[::1]x:80",
        "[::1]]:80",
        "[::1] ",
    ] {
        assert!(
            matches!(split_authority(host), Err(RouteError::BadHost)),
            "{host:?}"
        );
        let e = route_(&parts("GET", "/k", Some(host)), LISTENER, &settings());
        assert!(matches!(e, Err(RouteError::BadHost)), "{host:?}: {e:?}");
    }
    assert_eq!(
        split_authority("[::1]:8080").unwrap(),
        ("[::1]".to_owned(), Some(8080))
    );
    assert_eq!(
        split_authority("[::1]").unwrap(),
        ("[::1]".to_owned(), None)
    );
}

// Found by `fuzz/` (target `route`): `?session` on a general-purpose bucket was routed as
// CreateSession to the general-purpose endpoint, where the policy signs everything with IAM: it
// would have been signed and sent. Only a directory bucket's CreateSession is answered locally.
#[test]
fn session_on_a_general_purpose_bucket_is_refused() {
    for (uri, host) in [
        ("/logs?session", Some("127.0.0.1:8080")),
        ("/?%73ession=", Some("logs.localhost")),
        ("http://logs.s3.us-west-2.amazonaws.com/?session", None),
        ("http://s3.amazonaws.com/logs?Session", None),
    ] {
        assert!(
            matches!(err("GET", uri, host), RouteError::SessionSubresource),
            "{uri} {host:?}"
        );
    }
    assert_eq!(
        ok("GET", "/b--usw2-az1--x-s3?session", Some("127.0.0.1")).operation,
        CreateSession
    );
}

// Found by `fuzz/` (target `route`, invariant: `path_and_query` starts with '/'): the asterisk
// form `*` was routed as a key, making `path_and_query` `%2A` and the upstream target
// `https://HOST%2A`, in every mode.
#[test]
fn the_asterisk_form_is_refused() {
    let tunnel = Some(ZONAL);
    for (method, host) in [
        ("OPTIONS", "localhost"),
        ("GET", "b-3.localhost"),
        ("GET", "b--usw2-az1--x-s3.localhost:8080"),
        ("PUT", "127.0.0.1"),
    ] {
        let e = route_(&parts(method, "*", Some(host)), LISTENER, &settings());
        assert!(
            matches!(e, Err(RouteError::BadTarget)),
            "{method} {host}: {e:?}"
        );
    }
    let e = route_(&parts("GET", "*", None), tunnel, &settings());
    assert!(matches!(e, Err(RouteError::BadTarget)), "{e:?}");
}
