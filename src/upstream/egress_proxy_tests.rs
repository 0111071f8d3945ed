//! Egress proxy URLs and `NO_PROXY` lists, as operators write them.

use super::*;

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

#[test]
fn proxy_urls_parse_with_their_defaults() {
    let p = EgressProxy::parse("http://proxy.corp.example:3128").unwrap();
    assert_eq!(
        (p.tls, p.host.as_str(), p.port),
        (false, "proxy.corp.example", 3128)
    );
    assert_eq!(p.authorization, None);
    let p = EgressProxy::parse("proxy.corp.example:8080").unwrap();
    assert_eq!((p.tls, p.port), (false, 8080), "no scheme means http://");
    let p = EgressProxy::parse("HTTP://Proxy.Corp.Example/").unwrap();
    assert_eq!((p.host.as_str(), p.port), ("proxy.corp.example", 80));
    let p = EgressProxy::parse("https://10.0.0.1").unwrap();
    assert_eq!((p.tls, p.host.as_str(), p.port), (true, "10.0.0.1", 443));
    let p = EgressProxy::parse("http://[fd00::1]:3128").unwrap();
    assert_eq!((p.host.as_str(), p.port), ("fd00::1", 3128));
    assert_eq!(p.to_string(), "http://[fd00::1]:3128");
}

#[test]
fn userinfo_becomes_basic_credentials_percent_decoded() {
    let p = EgressProxy::parse("http://user:pass@proxy:3128").unwrap();
    assert_eq!(
        p.authorization.as_deref(),
        Some(basic("user:pass").as_str())
    );
    let p = EgressProxy::parse("http://DOMAIN%5Cuser:p%40ss%3Aword@proxy:3128").unwrap();
    assert_eq!(
        p.authorization.as_deref(),
        Some(basic("DOMAIN\\user:p@ss:word").as_str())
    );
    let p = EgressProxy::parse("http://user@proxy:3128").unwrap();
    assert_eq!(p.authorization.as_deref(), Some(basic("user:").as_str()));
    // An unencoded '@' in the password: the last '@' ends the userinfo.
    let p = EgressProxy::parse("http://user:p@ss@proxy:3128").unwrap();
    assert_eq!(p.host, "proxy");
    assert_eq!(
        p.authorization.as_deref(),
        Some(basic("user:p@ss").as_str())
    );
}

#[test]
fn unusable_urls_are_refused_without_repeating_them() {
    for url in [
        "socks5://user:s3cret@proxy:1080",
        "ftp://user:s3cret@proxy",
        "http://user:s3cret@",
        "http://user:s3cret@proxy:notaport",
        "http://user:s3cret@proxy:0",
        "http://user:s3cret@proxy:70000",
        "http://user:s3cret@[fd00::1",
        "http://user:s3cret@pro xy:80",
        "weird+scheme://user:s3cret@proxy",
    ] {
        let error = EgressProxy::parse(url).unwrap_err();
        assert!(
            !error.contains("s3cret") && !error.contains("proxy:"),
            "{url}: {error}"
        );
    }
    let error = EgressProxy::parse("socks5h://proxy:1080").unwrap_err();
    assert!(
        error.contains("socks5h:// egress proxies are not supported"),
        "{error}"
    );
}

#[test]
fn display_and_debug_redact_the_userinfo() {
    let p = EgressProxy::parse("http://alice:s3cret-pass@proxy.corp:3128").unwrap();
    assert_eq!(p.to_string(), "http://[redacted]@proxy.corp:3128");
    let debug = format!("{p:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("alice"),
        "{debug}"
    );
    let egress = Egress {
        proxy: p,
        no_proxy: NoProxy::parse("localhost"),
        source: "HTTPS_PROXY",
    };
    let debug = format!("{egress:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("Basic"),
        "{debug}"
    );
    assert_eq!(
        redact_userinfo("http://alice:s3cret@proxy:3128/path@x"),
        "http://[redacted]@proxy:3128/path@x"
    );
    assert_eq!(
        redact_userinfo("alice:s3cret@proxy:3128"),
        "[redacted]@proxy:3128"
    );
    assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
}

#[test]
fn no_proxy_matches_domains_with_or_without_a_leading_dot() {
    let host = "demo--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com";
    for list in [
        "amazonaws.com",
        ".amazonaws.com",
        "*.amazonaws.com",
        "localhost, .AMAZONAWS.COM.",
        "us-west-2.amazonaws.com",
        host,
        "*",
        "localhost *",
        "amazonaws.com:443",
    ] {
        assert!(NoProxy::parse(list).covers(host, 443), "{list:?}");
    }
    for list in [
        "",
        "localhost,127.0.0.1",
        "zonaws.com",
        "us-east-1.amazonaws.com",
        "amazonaws.com:8443",
        "s3express-usw2-az1.us-west-2.amazonaws.com.evil",
        "*.*",
    ] {
        assert!(!NoProxy::parse(list).covers(host, 443), "{list:?}");
    }
    assert!(NoProxy::parse(".example.com").covers("example.com", 443));
    assert!(!NoProxy::parse("example.com").covers("badexample.com", 443));
}

#[test]
fn no_proxy_matches_addresses_and_cidr_blocks() {
    let list = NoProxy::parse(
        "169.254.169.254,10.0.0.0/8 fd00:ec2::23, [::1]:443, 192.168.1.7:8443, 0.0.0.0/0x, 1.2.3.4/33",
    );
    assert_eq!(list.len(), 5, "{list:?}");
    assert!(list.covers("169.254.169.254", 80));
    assert!(list.covers("10.200.3.4", 443));
    assert!(!list.covers("11.0.0.1", 443));
    assert!(list.covers("[fd00:ec2::23]", 443));
    assert!(list.covers("::1", 443));
    assert!(!list.covers("::1", 80));
    assert!(list.covers("192.168.1.7", 8443));
    assert!(!list.covers("192.168.1.7", 443));
    assert!(
        !list.covers("10.example.com", 443),
        "addresses match only hosts written as addresses"
    );
    let everything = NoProxy::parse("0.0.0.0/0,::/0");
    assert!(everything.covers("203.0.113.9", 443) && everything.covers("2001:db8::1", 443));
    assert!(!NoProxy::parse("10.0.0.0/8").covers("::ffff:10.0.0.1", 443));
}

#[test]
fn egress_sends_everything_through_the_proxy_but_what_no_proxy_covers() {
    let egress = Egress {
        proxy: EgressProxy::parse("http://proxy:3128").unwrap(),
        no_proxy: NoProxy::parse("s3.us-east-1.amazonaws.com"),
        source: "--upstream-proxy",
    };
    assert!(egress
        .proxy_for("s3.us-west-2.amazonaws.com", 443)
        .is_some());
    assert!(egress
        .proxy_for("bucket.s3.us-east-1.amazonaws.com", 443)
        .is_none());
}
