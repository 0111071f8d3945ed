use super::*;
use crate::admit::identity::file::AccessList;
use crate::admit::identity::testing::{t0, DATA, FILE};
use crate::admit::identity::tests::seen;
use std::time::Duration;
use Operation::*;

fn principal(name: &str) -> Principal {
    let list = AccessList::parse(FILE, "t").unwrap();
    Principal::client(list.by_name(name).unwrap().clone())
}

fn with_session(name: &str, bucket: &str, mode: Mode) -> Principal {
    let mut p = principal(name);
    p.session = Some(SessionGrant::for_tests(
        bucket,
        mode,
        t0() + Duration::from_secs(300),
    ));
    p
}

fn copy(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap()
}

const ZONE_BUCKET: &str = "logs--usw2-az1--x-s3";
const OTHER_ZONE: &str = "logs--use1-az4--x-s3";

#[test]
fn read_only_is_exactly_the_read_only_session_operations_plus_the_listed_reads() {
    let reads = [
        GetObject,
        HeadObject,
        ListObjectsV2,
        GetObjectAttributes,
        ListParts,
        ListMultipartUploads,
        HeadBucket,
        CreateSession,
        ListObjects,
        ListObjectVersions,
        GetBucketLocation,
        GetObjectTagging,
        GetObjectRetention,
        GetObjectLegalHold,
        GetObjectLockConfiguration,
        SelectObjectContent,
    ];
    for op in reads {
        assert_eq!(required_access(op), Access::ReadOnly, "{op:?}");
    }
    let writes = [
        PutObject,
        DeleteObject,
        DeleteObjects,
        CreateMultipartUpload,
        UploadPart,
        UploadPartCopy,
        CompleteMultipartUpload,
        AbortMultipartUpload,
        CopyObject,
        RenameObject,
        CreateBucket,
        DeleteBucket,
        GetBucketPolicy,
        PutBucketPolicy,
        GetBucketEncryption,
        GetBucketLifecycleConfiguration,
        GetObjectAcl,
        PutObjectAcl,
        BucketAcl,
        BucketCors,
        BucketVersioning,
        RestoreObject,
        ListDirectoryBuckets,
        Unknown,
    ];
    for op in writes {
        assert_eq!(required_access(op), Access::ReadWrite, "{op:?}");
    }
}

#[test]
fn a_read_only_client_reads_and_is_refused_writes() {
    let reader = principal("reader");
    assert_eq!(reader.may(GetObject, Some(DATA), None), Ok(()));
    assert_eq!(reader.may(HeadBucket, Some(ZONE_BUCKET), None), Ok(()));
    assert_eq!(reader.may(ListObjectsV2, Some(ZONE_BUCKET), None), Ok(()));
    for op in [PutObject, DeleteObject, CreateMultipartUpload, DeleteBucket] {
        let err = reader.may(op, Some(DATA), None).unwrap_err();
        assert_eq!(seen(err), (403, "AccessDenied".into()), "{op:?}");
    }
    let err = reader.may(GetObject, Some(OTHER_ZONE), None).unwrap_err();
    assert_eq!(
        err,
        AuthError::AccessDenied("no allow rule of the client matches the bucket")
    );
}

#[test]
fn a_read_write_client_writes_where_a_rule_says_so() {
    let writer = principal("writer");
    assert_eq!(writer.may(PutObject, Some(DATA), None), Ok(()));
    assert_eq!(writer.may(DeleteObjects, Some("gp-bucket"), None), Ok(()));
    assert!(writer.may(PutObject, Some(ZONE_BUCKET), None).is_err());
    assert_eq!(writer.may(GetObject, Some(ZONE_BUCKET), None), Ok(()));
}

#[test]
fn operations_without_a_bucket_are_refused() {
    let writer = principal("writer");
    assert!(writer.may(ListDirectoryBuckets, None, None).is_err());
    assert!(writer.may(Unknown, None, None).is_err());
}

#[test]
fn copies_need_read_access_to_the_source_bucket() {
    let writer = principal("writer");
    let readable = format!("/{ZONE_BUCKET}/some/key");
    assert_eq!(
        writer.may(CopyObject, Some(DATA), Some(&copy(&readable))),
        Ok(())
    );
    assert_eq!(
        writer.may(
            UploadPartCopy,
            Some(DATA),
            Some(&copy(&format!("{ZONE_BUCKET}/k?versionId=3")))
        ),
        Ok(())
    );
    let foreign = copy(&format!("/{OTHER_ZONE}/secret"));
    assert_eq!(
        writer.may(CopyObject, Some(DATA), Some(&foreign)),
        Err(AuthError::AccessDenied(
            "the client may not read the copy source bucket"
        ))
    );
    assert!(writer
        .may(UploadPartCopy, Some(DATA), Some(&foreign))
        .is_err());
    assert_eq!(
        writer.may(CopyObject, Some(DATA), None),
        Err(AuthError::InvalidCopySource)
    );
    // The destination still needs write access.
    let reader = principal("reader");
    assert!(reader
        .may(CopyObject, Some(DATA), Some(&copy(&readable)))
        .is_err());
}

#[test]
fn copy_sources_are_read_as_s3_reads_them() {
    let cases = [
        ("/src--usw2-az1--x-s3/key", "src--usw2-az1--x-s3"),
        ("src--usw2-az1--x-s3/key", "src--usw2-az1--x-s3"),
        (
            "/src--usw2-az1--x-s3/dir/a%20b%3Fc?versionId=abc",
            "src--usw2-az1--x-s3",
        ),
        ("src--usw2-az1--x-s3%2Fkey", "src--usw2-az1--x-s3"),
        ("/gp-bucket/k%2Fey", "gp-bucket"),
        // An encoded slash in the bucket part ends the bucket, once decoded, as in S3.
        ("/evil%2Fdata--usw2-az1--x-s3/k", "evil"),
    ];
    for (value, bucket) in cases {
        assert_eq!(copy_source_bucket(&copy(value)).unwrap(), bucket, "{value}");
    }
    for bad in [
        "",
        "/",
        "/bucket",
        "/bucket/",
        "//key",
        "?versionId=1",
        "/b%FF/k",
        // One leading slash is dropped before decoding: this one names an empty bucket.
        "%2Fsrc--usw2-az1--x-s3%2Fkey",
        "/src--usw2-az1--x-s3/../other--use1-az4--x-s3/k",
        "/Src--usw2-az1--x-s3/k",
    ] {
        assert_eq!(
            copy_source_bucket(&copy(bad)),
            Err(AuthError::InvalidCopySource),
            "{bad:?}"
        );
    }
    let arn = copy("arn:aws:s3:us-west-2:123456789012:accesspoint/ap/object/key");
    assert!(matches!(
        copy_source_bucket(&arn),
        Err(AuthError::AccessDenied(_))
    ));
}

#[test]
fn a_rename_source_stays_in_the_bucket() {
    let writer = principal("writer");
    let same = copy(&format!("/{DATA}/old%20name"));
    assert_eq!(writer.may_rename_from(Some(DATA), &same), Ok(()));
    let elsewhere = copy(&format!("/{ZONE_BUCKET}/old"));
    assert_eq!(
        writer.may_rename_from(Some(DATA), &elsewhere),
        Err(AuthError::AccessDenied(
            "the rename source is in another bucket"
        ))
    );
    assert_eq!(
        writer.may_rename_from(Some(DATA), &copy("old-key")),
        Err(AuthError::InvalidCopySource)
    );
    assert!(writer.may_rename_from(None, &same).is_err());
}

#[test]
fn any_request_with_a_copy_source_needs_to_read_its_bucket() {
    // S3 may act on the header whatever the proxy took the request for.
    let writer = principal("writer");
    let foreign = copy(&format!("/{OTHER_ZONE}/secret"));
    for op in [PutObject, UploadPart, Unknown, RenameObject] {
        assert_eq!(
            writer.may(op, Some(DATA), Some(&foreign)),
            Err(AuthError::AccessDenied(
                "the client may not read the copy source bucket"
            )),
            "{op:?}"
        );
    }
    let readable = copy(&format!("/{ZONE_BUCKET}/k"));
    assert_eq!(writer.may(PutObject, Some(DATA), Some(&readable)), Ok(()));
}

#[test]
fn a_session_is_held_to_its_bucket_and_mode() {
    let ro = with_session("writer", DATA, Mode::ReadOnly);
    assert_eq!(ro.may(GetObject, Some(DATA), None), Ok(()));
    assert_eq!(ro.may(HeadBucket, Some(DATA), None), Ok(()));
    assert_eq!(
        ro.may(PutObject, Some(DATA), None),
        Err(AuthError::AccessDenied("the session is ReadOnly"))
    );
    let rw = with_session("writer", DATA, Mode::ReadWrite);
    assert_eq!(rw.may(PutObject, Some(DATA), None), Ok(()));
    assert_eq!(
        rw.may(GetObject, Some(ZONE_BUCKET), None),
        Err(AuthError::AccessDenied("the session is for another bucket"))
    );
    assert!(
        rw.may(CreateSession, Some(DATA), None).is_err(),
        "sessions do not make sessions"
    );
    // A session never exceeds its client's rules.
    let reader_rw = with_session("reader", DATA, Mode::ReadWrite);
    assert!(reader_rw.may(PutObject, Some(DATA), None).is_err());
    // A session-signed copy: source checked against the client's rules, not the session's bucket.
    let source = copy(&format!("/{ZONE_BUCKET}/k"));
    assert_eq!(rw.may(CopyObject, Some(DATA), Some(&source)), Ok(()));
    assert_eq!(rw.name(), "writer");
    assert_eq!(rw.session().unwrap().bucket(), DATA);
}
