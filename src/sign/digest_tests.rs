//! Tests of `digest.rs`: Content-MD5 and SHA-256, kept and streamed.
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::sync::mpsc;

use super::*;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn md5_of(data: &[u8]) -> ContentMd5 {
    let digest: [u8; 16] = Md5::digest(data).into();
    ContentMd5::parse(b64(&digest).as_bytes()).unwrap()
}

/// A body yielding `data` in frames of the given sizes (the rest in one last frame).
fn frames(data: &[u8], sizes: &[usize]) -> ProxyBody {
    let mut rest = Bytes::copy_from_slice(data);
    let mut out: Vec<Result<Frame<Bytes>, BoxError>> = Vec::new();
    for &size in sizes {
        out.push(Ok(Frame::data(rest.split_to(size.min(rest.len())))));
    }
    if !rest.is_empty() {
        out.push(Ok(Frame::data(rest)));
    }
    StreamBody::new(futures_util::stream::iter(out)).boxed_unsync()
}

/// Reads a body to its end or first error: the data that came out, and the error.
async fn drain(
    mut body: impl Body<Data = Bytes, Error = BoxError> + Unpin,
) -> (Vec<u8>, Option<BoxError>) {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => out.extend_from_slice(&frame.into_data().unwrap_or_default()),
            Err(e) => {
                assert!(body.frame().await.is_none(), "nothing after the error");
                assert!(body.is_end_stream());
                return (out, Some(e));
            }
        }
    }
    (out, None)
}

fn mismatch(error: Option<BoxError>) -> DigestError {
    let error = error.expect("the body fails");
    match error.downcast::<DigestError>() {
        Ok(digest) => *digest,
        Err(other) => panic!("not a digest error: {other}"),
    }
}

#[test]
fn parses_the_base64_of_sixteen_bytes_only() {
    // MD5 of the empty string.
    let empty = ContentMd5::parse(b"1B2M2Y8AsgTpgAmY7PhCfg==").unwrap();
    assert_eq!(ContentMd5::parse(b" 1B2M2Y8AsgTpgAmY7PhCfg== "), Ok(empty));
    assert_eq!(empty.check(b""), Ok(()));
    for bad in [
        &b""[..],
        b"not base64!",
        b"1B2M2Y8AsgTpgAmY7PhCfg",           // unpadded
        b"1B2M2Y8AsgTpgAmY7PhC",             // 15 bytes
        b"1B2M2Y8AsgTpgAmY7PhCfgAA",         // 17 bytes
        b"d41d8cd98f00b204e9800998ecf8427e", // hex, as some tools mistakenly send
    ] {
        assert_eq!(
            ContentMd5::parse(bad),
            Err(DigestError::Invalid),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_kept_body_is_checked_whole() {
    let md5 = md5_of(b"hello world");
    assert_eq!(md5.check(b"hello world"), Ok(()));
    assert_eq!(
        md5.check(b"hello world!"),
        Err(DigestError::Mismatch {
            expected: "XrY7u+Ae7tCTyyK7j1rNww==".into(),
            calculated: b64(&Md5::digest(b"hello world!")),
        })
    );
}

#[tokio::test]
async fn a_body_of_known_length_fails_in_place_of_its_last_frame_at_any_split() {
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 256) as u8).collect();
    let right = md5_of(&data);
    let wrong = md5_of(b"something else");
    for sizes in [&[][..], &[1], &[999], &[500, 499], &[3, 3, 3, 500], &[1000]] {
        let body = Verified::new(frames(&data, sizes), right, Some(1000));
        let (out, error) = drain(body).await;
        assert!(error.is_none(), "{sizes:?}: {error:?}");
        assert!(out == data);

        let body = Verified::new(frames(&data, sizes), wrong, Some(1000));
        let (out, error) = drain(body).await;
        assert!(matches!(mismatch(error), DigestError::Mismatch { .. }));
        let last = data.len() - sizes.iter().sum::<usize>().min(data.len());
        let last = if last == 0 {
            *sizes.last().unwrap()
        } else {
            last
        };
        assert_eq!(
            out.len(),
            data.len() - last,
            "{sizes:?}: all but the last frame"
        );
    }
}

#[tokio::test]
async fn a_body_of_unknown_length_is_checked_at_its_end() {
    let data = vec![9u8; 300];
    let (out, error) = drain(Verified::new(
        frames(&data, &[100, 100]),
        md5_of(&data),
        None,
    ))
    .await;
    assert!(error.is_none() && out == data);
    let (out, error) = drain(Verified::new(
        frames(&data, &[100, 100]),
        md5_of(b"x"),
        None,
    ))
    .await;
    assert!(matches!(mismatch(error), DigestError::Mismatch { .. }));
    assert_eq!(out, data, "every frame, then the error in place of the end");
}

#[tokio::test]
async fn an_empty_body_is_checked_too() {
    let empty = || crate::body::empty();
    let body = Verified::new(empty(), md5_of(b""), Some(0));
    assert!(!body.is_end_stream(), "polled until checked");
    assert_eq!(drain(body).await.1.map(|e| e.to_string()), None);
    let (out, error) = drain(Verified::new(empty(), md5_of(b"x"), Some(0))).await;
    assert!(out.is_empty());
    assert!(matches!(mismatch(error), DigestError::Mismatch { .. }));
}

#[tokio::test]
async fn errors_of_the_body_pass_through() {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
        Ok(Frame::data(Bytes::from_static(b"ab"))),
        Err("client went away".into()),
    ];
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
    let mut body = Verified::new(body, md5_of(b"abcd"), Some(4));
    assert!(body.frame().await.unwrap().is_ok());
    let error = body.frame().await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "client went away");
}

/// The check does not wait for the end of a body whose length it knows: the client may hold
/// its stream open, and the upstream request must die before its last byte either way.
#[tokio::test(start_paused = true)]
async fn a_known_length_is_checked_as_the_last_bytes_arrive_without_waiting_for_the_end() {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok::<_, BoxError>(Frame::data(data)), rx))
    });
    let body = StreamBody::new(stream).boxed_unsync();
    let mut body = Verified::new(body, md5_of(b"abcdef"), Some(6));
    tx.send(Bytes::from_static(b"abc")).await.unwrap();
    assert!(body.frame().await.unwrap().is_ok());
    tx.send(Bytes::from_static(b"xyz")).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(1), body.frame()).await;
    let error = next.expect("no wait for the end").unwrap().unwrap_err();
    assert!(error.is::<DigestError>(), "{error}");
    drop(tx);
}

fn sha256_of(data: &[u8]) -> Sha256 {
    Sha256::from_hex(&hex(lc::digest(&SHA256, data).as_ref())).unwrap()
}

#[test]
fn sha256_reads_sixty_four_hex_digits_only() {
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(Sha256::from_hex(empty), Some(Sha256(EMPTY_SHA256)));
    assert_eq!(
        Sha256::from_hex(&empty.to_ascii_uppercase()),
        Some(Sha256(EMPTY_SHA256))
    );
    for bad in [
        "",
        &empty[..63],
        &format!("{empty}0"),
        &empty.replace('e', "g"),
        "UNSIGNED-PAYLOAD",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        &format!("+{}", &empty[1..]),
    ] {
        assert_eq!(Sha256::from_hex(bad), None, "{bad}");
    }
}

#[test]
fn a_kept_body_is_checked_against_its_sha256() {
    let sha = sha256_of(b"hello");
    assert_eq!(sha.check(b"hello"), Ok(()));
    assert_eq!(
        sha.check(b"hellO"),
        Err(DigestError::Sha256Mismatch {
            expected: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into(),
            calculated: hex(lc::digest(&SHA256, b"hellO").as_ref()),
        })
    );
    assert_eq!(sha256_of(b"").check(b""), Ok(()));
    assert!(sha256_of(b"").check(b"x").is_err());
    // Both digests, as an old botocore sends them over plain HTTP: each must hold.
    let both = Expected {
        md5: Some(md5_of(b"hello")),
        sha256: Some(sha),
    };
    assert_eq!(both.check(b"hello"), Ok(()));
    let wrong_md5 = Expected {
        md5: Some(md5_of(b"other")),
        ..both
    };
    assert!(matches!(
        wrong_md5.check(b"hello"),
        Err(DigestError::Mismatch { .. })
    ));
    assert!(Expected::default().check(b"anything").is_ok());
}

#[tokio::test]
async fn a_streamed_body_fails_its_sha256_in_place_of_its_last_frame() {
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    for (length, sizes) in [(Some(5000), &[1000, 1000][..]), (None, &[4999][..])] {
        let right = Expected {
            md5: Some(md5_of(&data)),
            sha256: Some(sha256_of(&data)),
        };
        let (out, error) = drain(right.verify(frames(&data, sizes), length)).await;
        assert!(error.is_none(), "{error:?}");
        assert!(out == data);
        let wrong = Expected {
            sha256: Some(sha256_of(b"other")),
            ..right
        };
        let (out, error) = drain(wrong.verify(frames(&data, sizes), length)).await;
        assert!(matches!(
            mismatch(error),
            DigestError::Sha256Mismatch { .. }
        ));
        let kept = if length.is_some() {
            sizes.iter().sum::<usize>()
        } else {
            data.len()
        };
        assert_eq!(
            out.len(),
            kept,
            "{length:?}: the last frame is never passed on"
        );
    }
}
