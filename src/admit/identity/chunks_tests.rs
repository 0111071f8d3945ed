//! Tests of `chunks.rs`: the streamed check accepts exactly the chain aws-sigv4's own
//! `sign_chunk` and `sign_trailer` make, however the chunks are sliced.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use bytes::Bytes;

use super::*;
use crate::admit::identity::testing::t0;

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

fn identity(secret: &str) -> Identity {
    Credentials::new("AKIDWRITER", secret, None, None, "test").into()
}

fn scope(time: SystemTime) -> Scope<'static> {
    Scope {
        amz_date: "20231114T221320Z",
        time,
        date: "20231114",
        region: "us-west-2",
        service: "s3",
    }
}

/// The signatures aws-sigv4 gives `chunks` (the final empty one included), and the trailer's.
fn reference(chunks: &[&[u8]], trailer: &[(&str, &str)]) -> (Vec<String>, String) {
    let identity = identity("writer-secret-0123456789");
    let params = v4::SigningParams::<()>::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(t0())
        .settings(())
        .build()
        .unwrap();
    let mut previous = SEED.to_owned();
    let mut out = Vec::new();
    for chunk in chunks.iter().chain([&&b""[..]]) {
        let bytes = Bytes::copy_from_slice(chunk);
        previous = v4::sign_chunk(&bytes, &previous, &params)
            .unwrap()
            .into_parts()
            .1;
        out.push(previous.clone());
    }
    let mut headers = Headers::new();
    for (name, value) in trailer {
        headers.append(name.to_string(), value.to_string());
    }
    let trailer = v4::sign_trailer(&headers, &previous, &params)
        .unwrap()
        .into_parts()
        .1;
    (out, trailer)
}

fn chain(secret: &str, trailer: bool) -> ChunkSignatures {
    ChunkSignatures::new(&identity(secret), scope(t0()), SEED, trailer)
}

#[test]
fn accepts_the_chain_aws_sigv4_makes_fed_in_any_slices() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(65536).collect();
    let lines = [("x-amz-checksum-crc32", "sOO8/Q==")];
    let (signatures, trailer) = reference(&chunks, &lines);
    for slice in [1, 1000, 65536] {
        let mut check = chain("writer-secret-0123456789", true);
        for (chunk, signature) in chunks.iter().zip(&signatures) {
            for piece in chunk.chunks(slice) {
                check.data(piece);
            }
            check.end_chunk(signature.as_bytes()).unwrap();
        }
        check
            .end_chunk(signatures.last().unwrap().as_bytes())
            .unwrap();
        let lines: Vec<(String, String)> = lines
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        check.end_trailer(&lines, trailer.as_bytes()).unwrap();
    }
}

#[test]
fn refuses_a_changed_chunk_a_forged_signature_a_reordered_chain_and_another_key() {
    let (one, two): (&[u8], &[u8]) = (b"first chunk", b"second chunk");
    let (signatures, _) = reference(&[one, two], &[]);
    let mismatch = Err(AuthError::SignatureDoesNotMatch(
        "a chunk signature does not match",
    ));
    // A changed byte.
    let mut check = chain("writer-secret-0123456789", false);
    check.data(b"first chunK");
    assert_eq!(check.end_chunk(signatures[0].as_bytes()), mismatch);
    // The second chunk's signature presented first (each chains from the one before).
    let mut check = chain("writer-secret-0123456789", false);
    check.data(two);
    assert_eq!(check.end_chunk(signatures[1].as_bytes()), mismatch);
    // Another client's key.
    let mut check = chain("reader-secret-0123456789", false);
    check.data(one);
    assert_eq!(check.end_chunk(signatures[0].as_bytes()), mismatch);
    // Upper-case hex, a prefix, nothing.
    for presented in [
        signatures[0].to_ascii_uppercase(),
        signatures[0][..63].to_owned(),
        String::new(),
    ] {
        let mut check = chain("writer-secret-0123456789", false);
        check.data(one);
        assert_eq!(check.end_chunk(presented.as_bytes()), mismatch);
    }
    // The final chunk: right only after the chain it ends.
    let mut check = chain("writer-secret-0123456789", false);
    assert_eq!(check.end_chunk(signatures[2].as_bytes()), mismatch);
}

#[test]
fn the_trailer_signature_covers_every_trailer_line() {
    let lines = [("x-amz-checksum-crc32", "sOO8/Q==")];
    let (signatures, trailer) = reference(&[b"data"], &lines);
    let ready = || {
        let mut check = chain("writer-secret-0123456789", true);
        check.data(b"data");
        check.end_chunk(signatures[0].as_bytes()).unwrap();
        check.end_chunk(signatures[1].as_bytes()).unwrap();
        check
    };
    let owned = |lines: &[(&str, &str)]| -> Vec<(String, String)> {
        lines
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert!(ready()
        .end_trailer(&owned(&lines), trailer.as_bytes())
        .is_ok());
    for changed in [
        owned(&[("x-amz-checksum-crc32", "AAAAAA==")]),
        owned(&[("x-amz-checksum-crc32c", "sOO8/Q==")]),
        owned(&[]),
        owned(&[lines[0], ("x-amz-meta-extra", "1")]),
    ] {
        assert!(ready().end_trailer(&changed, trailer.as_bytes()).is_err());
    }
    // A body signed without trailer has no trailer signature to accept.
    let mut plain = chain("writer-secret-0123456789", false);
    assert!(!plain.expects_trailer());
    assert!(plain
        .end_trailer(&owned(&lines), trailer.as_bytes())
        .is_err());
}
