//! `split_authority`: what it accepts is exactly the documented grammar (DESIGN.md §3.1: letters,
//! digits, `.` and `-`, or a bracketed IPv6 literal, then an optional numeric port), and what it
//! returns is lowercase, without a trailing dot, and splits again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3x_proxy::route::split_authority;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((host, port)) = split_authority(input) else {
        return;
    };
    // Accepted input: `host[:port]` where host is a plain name or `[IPv6]`, nothing else.
    let (written_host, written_port) = match input.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']').expect("bracket closes");
            assert!(inside.parse::<std::net::Ipv6Addr>().is_ok(), "{input:?}");
            let port =
                match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').unwrap_or_else(|| {
                        panic!("{input:?}: text after the IPv6 literal accepted")
                    })),
                };
            (&input[..inside.len() + 2], port)
        }
        None => match input.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (input, None),
        },
    };
    if !written_host.starts_with('[') {
        assert!(
            written_host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "{input:?}: accepted a host outside [A-Za-z0-9.-]"
        );
        assert!(written_host.len() <= 253, "{input:?}");
        assert!(
            host.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
            "{input:?} -> {host:?}"
        );
        assert!(!host.ends_with('.'), "{input:?} -> {host:?}");
        assert_eq!(
            host,
            written_host.trim_end_matches('.').to_ascii_lowercase()
        );
    }
    match (written_port, port) {
        (None, None) => {}
        (Some(p), Some(n)) => {
            assert!(
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
                "{input:?}"
            );
            assert_eq!(p.parse::<u16>().ok(), Some(n), "{input:?}");
        }
        other => panic!("{input:?}: port {other:?}"),
    }
    // Case does not matter, and the result splits again to itself.
    let upper = split_authority(&input.to_ascii_uppercase()).expect("uppercase accepted too");
    assert_eq!(upper, (host.clone(), port), "{input:?}");
    if !host.is_empty() {
        let again = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let reparsed = split_authority(&again).expect("the result is accepted again");
        assert_eq!(reparsed, (host, port), "{input:?}");
    }
});
