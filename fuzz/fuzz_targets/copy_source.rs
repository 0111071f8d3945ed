//! `copy_source::parse` (`x-amz-copy-source`, `x-amz-rename-source`): what it accepts names one
//! bucket however a server reads it. The documented reading of S3 (one leading slash dropped as
//! sent, the rest decoded whole and split at its first `/`) gives exactly the bucket the proxy
//! authorises; the other readings a server might make (split before decoding, every leading
//! slash dropped, `.`/`..` resolved and `//` collapsed) give that bucket or no valid bucket at
//! all. The bucket is a valid name, the key plain, and writing the source back reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use s3x_proxy::admit::copy_source::parse;
use s3x_proxy::route::names::{BucketName, GeneralBucketName};

fn valid_bucket(name: &str) -> bool {
    GeneralBucketName::parse(name).is_ok() || BucketName::parse(name).is_ok()
}

fn decode(s: &str) -> Option<String> {
    percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned())
}

/// The bucket one reading of S3 takes (see the test of the same name in route_props.rs).
fn reading(raw: &str, raw_split: bool, strip_all: bool, normalise: bool) -> Option<String> {
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
    let bucket = if raw_split { decode(bucket)? } else { bucket.to_owned() };
    (!bucket.is_empty() && !key.is_empty()).then_some(bucket)
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let header = http::HeaderValue::from_str(raw).ok();
    let Ok(source) = parse(raw) else {
        if let Some(header) = header {
            assert!(s3x_proxy::admit::identity::copy_source_bucket(&header).is_err(), "{raw:?}");
        }
        return;
    };
    assert!(valid_bucket(&source.bucket), "{raw:?}");
    assert!(!source.key.is_empty() && source.key.len() <= 1024, "{raw:?}");
    assert!(
        source.key.split('/').all(|s| s != "." && s != ".."),
        "{raw:?}: dot segment accepted"
    );
    assert_eq!(
        reading(raw, false, false, false).as_deref(),
        Some(source.bucket.as_str()),
        "{raw:?}"
    );
    for (raw_split, strip_all, normalise) in [
        (true, false, false),
        (false, true, false),
        (true, true, false),
        (false, false, true),
        (true, false, true),
        (false, true, true),
        (true, true, true),
    ] {
        if let Some(bucket) = reading(raw, raw_split, strip_all, normalise) {
            assert!(
                bucket == source.bucket || !valid_bucket(&bucket),
                "{raw:?}: read as {bucket:?} ({raw_split}, {strip_all}, {normalise}), authorised as {:?}",
                source.bucket
            );
        }
    }
    if let Some(header) = header {
        assert_eq!(
            s3x_proxy::admit::identity::copy_source_bucket(&header).as_deref(),
            Ok(source.bucket.as_str()),
            "{raw:?}"
        );
    }
    let key: String = utf8_percent_encode(&source.key, NON_ALPHANUMERIC).collect();
    let mut again = format!("/{}/{key}", source.bucket);
    if let Some(version) = &source.version_id {
        let version: String = utf8_percent_encode(version, NON_ALPHANUMERIC).collect();
        again = format!("{again}?versionId={version}");
    }
    assert_eq!(parse(&again), Ok(source), "{raw:?} -> {again:?}");
});
