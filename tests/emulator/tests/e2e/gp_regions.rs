//! General-purpose region answers: 301 PermanentRedirect, wrong-region signing, bucket location.

use bytes::Bytes;
use http::StatusCode;

use crate::general_purpose::{start, EU, US};
use crate::support::{iam, Client};

#[tokio::test]
async fn region_answers_mirror_s3() {
    let emu = start().await;
    // Another region's host: 301 with the bucket's region.
    let mut wrong_host =
        Client::connect(&emu, &format!("{EU}.s3.us-west-2.amazonaws.com"), false).await;
    let r = wrong_host
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header("x-amz-bucket-region").unwrap(), "eu-west-1");
    assert_eq!(r.xml("Code").unwrap(), "PermanentRedirect");
    assert_eq!(
        r.xml("Endpoint").unwrap(),
        "gp-eu.s3.eu-west-1.amazonaws.com"
    );
    assert_eq!(r.xml("Bucket").unwrap(), EU);
    assert!(r.xml("RequestId").is_some());
    let r = wrong_host
        .send("HEAD", "", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header("x-amz-bucket-region").unwrap(), "eu-west-1");
    assert!(r.body.is_empty());

    // The right host, signed for another region.
    let mut right_host =
        Client::connect(&emu, &format!("{EU}.s3.eu-west-1.amazonaws.com"), false).await;
    right_host.region = "us-east-1".into();
    let r = right_host
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.xml("Code").unwrap(), "AuthorizationHeaderMalformed");
    assert_eq!(r.xml("Region").unwrap(), "eu-west-1");
    assert_eq!(r.header("x-amz-bucket-region").unwrap(), "eu-west-1");

    // The global host: us-east-1 signing is wrong for an eu-west-1 bucket, its own region works.
    let mut global = Client::connect(&emu, &format!("{EU}.s3.amazonaws.com"), false).await;
    assert_eq!(global.region, "us-east-1");
    let r = global
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "AuthorizationHeaderMalformed");
    assert_eq!(r.header("x-amz-bucket-region").unwrap(), "eu-west-1");
    global.region = "eu-west-1".into();
    let r = global
        .send("GET", "k", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.xml("Code").unwrap(), "NoSuchKey");

    let n = emu.counters();
    assert_eq!((n.permanent_redirects, n.wrong_region), (2, 2));

    // HeadBucket and GetBucketLocation (which any region's host answers).
    let r = right_host.region.clone();
    assert_eq!(r, "us-east-1");
    right_host.region = "eu-west-1".into();
    let r = right_host
        .send("HEAD", "", &[], vec![], Bytes::new(), &iam(), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-amz-bucket-region").unwrap(), "eu-west-1");
    let mut any = Client::connect(&emu, "s3.amazonaws.com", false).await;
    let r = any
        .send(
            "GET",
            EU,
            &[("location", "")],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().ends_with(">eu-west-1</LocationConstraint>"),
        "{}",
        r.text()
    );
    let r = any
        .send(
            "GET",
            US,
            &[("location", "")],
            vec![],
            Bytes::new(),
            &iam(),
            None,
        )
        .await;
    assert!(
        r.text().contains("<LocationConstraint xmlns"),
        "{}",
        r.text()
    );
    assert!(r.xml("LocationConstraint").is_none(), "empty for us-east-1");
}
