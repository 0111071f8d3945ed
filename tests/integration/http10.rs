//! HTTP/1.0 clients read an answer without a length until the connection closes, so a cut looks
//! like the end: such answers are given their length first, and a cut becomes a 502.

use std::time::Duration;

use http::{Method, StatusCode, Version};

use crate::scripted::Rig;

#[tokio::test(start_paused = true)]
async fn an_answer_without_a_length_gets_one_for_an_http10_client() {
    let rig = Rig::start(Duration::from_secs(300));
    let (status, length, read) = rig
        .request_as(Version::HTTP_10, Method::GET, "chunked", "")
        .await;
    assert_eq!(
        (status, length.as_deref(), read),
        (StatusCode::OK, Some("3000"), Ok(3000))
    );
    // HTTP/1.1 clients see chunks and their end: the answer streams as it came.
    let (status, length, read) = rig
        .request_as(Version::HTTP_11, Method::GET, "chunked", "")
        .await;
    assert_eq!((status, length, read), (StatusCode::OK, None, Ok(3000)));
}

#[tokio::test(start_paused = true)]
async fn a_cut_answer_is_a_502_for_an_http10_client_not_a_short_200() {
    let rig = Rig::start(Duration::from_secs(300));
    let (status, _, _) = rig
        .request_as(Version::HTTP_10, Method::GET, "cut", "")
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let (status, _, read) = rig
        .request_as(Version::HTTP_11, Method::GET, "cut", "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        read.is_err(),
        "an HTTP/1.1 client sees the cut in the chunked framing"
    );
}
