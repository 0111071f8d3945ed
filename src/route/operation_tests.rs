//! The operation table: which S3 operation a method, path and query are.

use super::*;
use Operation::*;

fn op(method: &str, has_key: bool, query: &str, headers: &[(&str, &str)]) -> Operation {
    let resource = match has_key {
        true => Resource::Object,
        false => Resource::Bucket,
    };
    classified(method, resource, query, headers)
}

fn classified(
    method: &str,
    resource: Resource,
    query: &str,
    headers: &[(&str, &str)],
) -> Operation {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let query = Query::parse((!query.is_empty()).then_some(query));
    classify(&RequestShape {
        method: &method,
        resource,
        query: &query,
        subresource: subresource(&query).ok().flatten(),
        headers: &map,
    })
}

#[test]
fn the_operation_table() {
    let copy = [("x-amz-copy-source", "/src--usw2-az1--x-s3/k")];
    type Case<'a> = (&'a str, bool, &'a str, &'a [(&'a str, &'a str)], Operation);
    let cases: &[Case] = &[
        ("GET", true, "", &[], GetObject),
        ("GET", true, "x-id=GetObject", &[], GetObject),
        ("HEAD", true, "", &[], HeadObject),
        ("PUT", true, "", &[], PutObject),
        ("PUT", true, "", &copy, CopyObject),
        ("PUT", true, "partNumber=2&uploadId=abc", &[], UploadPart),
        (
            "PUT",
            true,
            "partNumber=2&uploadId=abc",
            &copy,
            UploadPartCopy,
        ),
        ("PUT", true, "renameObject", &[], RenameObject),
        ("DELETE", true, "", &[], DeleteObject),
        ("DELETE", true, "uploadId=abc", &[], AbortMultipartUpload),
        ("POST", true, "uploads", &[], CreateMultipartUpload),
        ("POST", true, "uploadId=abc", &[], CompleteMultipartUpload),
        ("GET", true, "uploadId=abc", &[], ListParts),
        ("GET", true, "attributes", &[], GetObjectAttributes),
        ("GET", true, "tagging", &[], GetObjectTagging),
        ("PUT", true, "acl", &[], PutObjectAcl),
        ("POST", true, "restore", &[], RestoreObject),
        (
            "POST",
            true,
            "select&select-type=2",
            &[],
            SelectObjectContent,
        ),
        ("GET", false, "session", &[], CreateSession),
        ("GET", false, "policy&%73ession", &[], CreateSession),
        ("GET", false, "session=", &[], CreateSession),
        ("GET", false, "location", &[], GetBucketLocation),
        ("GET", false, "list-type=2&prefix=a%2F", &[], ListObjectsV2),
        ("GET", false, "", &[], ListObjects),
        ("GET", false, "prefix=a&delimiter=%2F", &[], ListObjects),
        ("GET", false, "uploads", &[], ListMultipartUploads),
        ("GET", false, "versions", &[], ListObjectVersions),
        ("POST", false, "delete", &[], DeleteObjects),
        ("HEAD", false, "", &[], HeadBucket),
        ("GET", false, "cors", &[], BucketCors),
        ("PUT", false, "versioning", &[], BucketVersioning),
        ("GET", false, "policy", &[], GetBucketPolicy),
        ("PUT", false, "", &[], CreateBucket),
        ("GET", false, "somethingnew", &[], Unknown),
        // A subresource the table does not know is no plain read or write.
        ("GET", true, "torrent", &[], Unknown),
        ("GET", true, "ACL", &[], Unknown),
        ("HEAD", true, "Tagging", &[], Unknown),
        ("PUT", true, "policy", &[], Unknown),
        ("PUT", true, "torrent", &copy, Unknown),
        ("DELETE", true, "restore", &[], Unknown),
        ("HEAD", false, "policy", &[], Unknown),
        ("HEAD", false, "x-id=HeadBucket", &[], HeadBucket),
        // Modifiers are not subresources.
        (
            "GET",
            true,
            "partNumber=2&versionId=v&response-content-type=a",
            &[],
            GetObject,
        ),
        ("GET", true, "tagging&versionId=v", &[], GetObjectTagging),
    ];
    for (method, has_key, query, headers, expected) in cases {
        assert_eq!(
            op(method, *has_key, query, headers),
            *expected,
            "{method} key={has_key} ?{query}"
        );
    }
}

#[test]
fn one_subresource_is_found_in_any_case_and_two_are_refused() {
    let sub = |raw: &str| subresource(&Query::parse(Some(raw)));
    assert_eq!(sub(""), Ok(None));
    assert_eq!(sub("prefix=a&x-id=GetObject&partNumber=1"), Ok(None));
    assert_eq!(
        sub("list-type=2&prefix=a&continuation-token=t"),
        Ok(Some("list-type"))
    );
    assert_eq!(sub("uploadId=u&partNumber=3"), Ok(Some("uploadId")));
    assert_eq!(sub("select&select-type=2"), Ok(Some("select")));
    assert_eq!(
        sub("uploads&prefix=p&delimiter=%2F&key-marker=k&upload-id-marker=u"),
        Ok(Some("uploads"))
    );
    assert_eq!(sub("versionId=v&tagging"), Ok(Some("tagging")));
    assert_eq!(sub("%41CL"), Ok(Some("acl")));
    for (raw, first, second) in [
        ("list-type=2&policy", "list-type", "policy"),
        ("location&acl", "location", "acl"),
        ("uploads&policy", "uploads", "policy"),
        ("uploadId=1&acl", "uploadId", "acl"),
        ("uploadId=1&Tagging", "uploadId", "tagging"),
        ("acl&acl", "acl", "acl"),
        ("list-type=2&%70olicy", "list-type", "policy"),
    ] {
        assert_eq!(sub(raw), Err(MixedSubresources(first, second)), "{raw}");
    }
}

#[test]
fn reads_use_read_only_sessions_and_copies_use_iam() {
    assert_eq!(GetObject.auth(), Auth::Session(Mode::ReadOnly));
    assert_eq!(ListParts.auth(), Auth::Session(Mode::ReadOnly));
    assert_eq!(PutObject.auth(), Auth::Session(Mode::ReadWrite));
    assert_eq!(DeleteObjects.auth(), Auth::Session(Mode::ReadWrite));
    assert_eq!(CopyObject.auth(), Auth::Iam);
    assert_eq!(UploadPartCopy.auth(), Auth::Iam);
    assert_eq!(CreateBucket.auth(), Auth::Iam);
    assert_eq!(CreateSession.auth(), Auth::AnswerLocally);
    assert!(!ListObjects.is_unsupported() && !ListObjectsV2.is_unsupported());
    assert_eq!(ListObjects.auth(), Auth::Session(Mode::ReadOnly));
    assert!(ListObjectVersions.is_unsupported());
}

#[test]
fn control_plane_requests_are_classified_path_style() {
    let control = |method, resource, query| classified(method, resource, query, &[]);
    use Resource::{ControlBucket, ControlRoot};
    assert_eq!(control("GET", ControlRoot, ""), ListDirectoryBuckets);
    assert_eq!(control("PUT", ControlRoot, ""), Unknown);
    assert_eq!(control("PUT", ControlBucket, ""), CreateBucket);
    assert_eq!(
        control("DELETE", ControlBucket, "policy"),
        DeleteBucketPolicy
    );
    assert_eq!(control("GET", ControlBucket, "location"), GetBucketLocation);
    assert_eq!(control("GET", ControlBucket, ""), Unknown);
}
