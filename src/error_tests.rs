//! The error → reply table: every kind of failure, the status and S3 code a client sees, and
//! proof that nothing internal or secret reaches the message.

use super::*;
use crate::route::names::NameError;
use std::time::Duration;

fn upstream_connect() -> UpstreamError {
    let inner = std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "127.0.0.1:9: Connection refused",
    );
    UpstreamError::Connect {
        host: "b--usw2-az1--x-s3.s3express-usw2-az1.us-west-2.amazonaws.com:443".into(),
        source: Box::new(inner),
    }
}

#[test]
fn every_error_maps_to_the_status_and_code_of_where_it_happened() {
    let s3_denied = CreateSessionError::S3 {
        status: StatusCode::FORBIDDEN,
        code: "AccessDenied".into(),
        message: "Access Denied".into(),
    };
    let cases: Vec<(ProxyError, u16, &str)> = vec![
        (
            RouteError::InvalidName(NameError::InvalidBucketName("bad")).into(),
            400,
            "InvalidBucketName",
        ),
        (
            RouteError::NotS3Host("example.com".into()).into(),
            403,
            "AccessDenied",
        ),
        (RouteError::MissingHost.into(), 400, "InvalidRequest"),
        (
            RouteError::GeneralPurposeOff("s3.amazonaws.com".into()).into(),
            403,
            "AccessDenied",
        ),
        (RouteError::BadHost.into(), 400, "InvalidRequest"),
        (RouteError::SessionSubresource.into(), 400, "InvalidRequest"),
        (
            PolicyError::IamToZonal("GetObject").into(),
            403,
            "AccessDenied",
        ),
        (RouteError::BadConnectTarget.into(), 400, "InvalidRequest"),
        (
            PolicyError::ReadOnly("PutObject").into(),
            403,
            "AccessDenied",
        ),
        (
            PolicyError::Unsupported("ListObjectVersions").into(),
            501,
            "NotImplemented",
        ),
        (ListingError::Delimiter.into(), 400, "InvalidRequest"),
        (ListingError::MaxKeys.into(), 400, "InvalidArgument"),
        (
            ListingError::TooLong {
                read: 100_000,
                pages: 100,
            }
            .into(),
            400,
            "InvalidRequest",
        ),
        (
            PolicyError::ConnectDenied("example.com".into()).into(),
            403,
            "AccessDenied",
        ),
        (
            SignError::NonAsciiHeader("x-amz-meta-a".into()).into(),
            400,
            "InvalidArgument",
        ),
        (
            ClientBodyError::LengthRequired.into(),
            411,
            "MissingContentLength",
        ),
        (
            ClientBodyError::Read("reset".into()).into(),
            400,
            "IncompleteBody",
        ),
        (
            ClientBodyError::Malformed("bad chunk".into()).into(),
            400,
            "IncompleteBody",
        ),
        (
            CredentialsUnavailable {
                reason: "IMDS is unreachable".into(),
            }
            .into(),
            503,
            "ServiceUnavailable",
        ),
        (s3_denied.into(), 403, "AccessDenied"),
        (
            CreateSessionError::Credentials.into(),
            503,
            "ServiceUnavailable",
        ),
        (
            CreateSessionError::Sign(SignError::Unsignable("x")).into(),
            500,
            "InternalError",
        ),
        (
            CreateSessionError::BadResponse("x".into()).into(),
            502,
            "BadGateway",
        ),
        (
            CreateSessionError::from(upstream_connect()).into(),
            502,
            "BadGateway",
        ),
        (upstream_connect().into(), 502, "BadGateway"),
        (
            UpstreamError::Timeout("S3's response headers").into(),
            504,
            "GatewayTimeout",
        ),
        (
            UpstreamError::Request("reset".into()).into(),
            502,
            "BadGateway",
        ),
        (
            UpstreamError::Answer("truncated".into()).into(),
            502,
            "BadGateway",
        ),
        (
            ProxyError::Internal("minting a leaf".into()),
            500,
            "InternalError",
        ),
    ];
    for (error, status, code) in cases {
        let reply = error.reply();
        assert_eq!(
            (reply.status.as_u16(), reply.code.as_str()),
            (status, code),
            "{error:?}"
        );
        assert!(!reply.message.is_empty(), "{error:?}");
    }
}

#[test]
fn a_stalled_request_body_is_the_clients_timeout_wherever_it_surfaced() {
    let stalled = || -> crate::body::BoxError { Box::new(BodyIdle(Duration::from_secs(60))) };
    /// As hyper reports a request body that failed while it was being sent.
    #[derive(Debug, thiserror::Error)]
    #[error("error from user's Body stream")]
    struct Sending(#[source] crate::body::BoxError);
    let sending = Sending(stalled());
    for error in [
        ProxyError::from(ClientBodyError::Read(stalled())),
        ProxyError::from(UpstreamError::Request(Box::new(sending))),
    ] {
        let reply = error.reply();
        assert_eq!(
            (reply.status.as_u16(), reply.code.as_str()),
            (400, "RequestTimeout"),
            "{error:?}"
        );
    }
}

#[test]
fn a_content_md5_mismatch_is_bad_digest_wherever_it_surfaced() {
    let mismatch = || DigestError::Mismatch {
        expected: "XrY7u+Ae7tCTyyK7j1rNww==".into(),
        calculated: "1B2M2Y8AsgTpgAmY7PhCfg==".into(),
    };
    /// As hyper reports a request body that failed while it was being sent.
    #[derive(Debug, thiserror::Error)]
    #[error("error from user's Body stream")]
    struct Sending(#[source] crate::body::BoxError);
    let sending = Sending(Box::new(mismatch()));
    for error in [
        // A kept body, checked before sending.
        ProxyError::from(mismatch()),
        // A body of unknown length, read part by part.
        ProxyError::from(ClientBodyError::Read(Box::new(mismatch()))),
        // A streamed body, cut on its way to S3.
        ProxyError::from(UpstreamError::Request(Box::new(sending))),
    ] {
        let reply = error.reply();
        assert_eq!(
            (reply.status.as_u16(), reply.code.as_str()),
            (400, "BadDigest"),
            "{error:?}"
        );
        assert_eq!(
            reply.message,
            "The Content-MD5 you specified did not match what we received."
        );
    }
    let invalid = ProxyError::from(DigestError::Invalid).reply();
    assert_eq!(
        (invalid.status.as_u16(), invalid.code.as_str()),
        (400, "InvalidDigest")
    );
    assert_eq!(
        invalid.message,
        "The Content-MD5 you specified was invalid."
    );
}

#[test]
fn send_errors_keep_where_they_happened() {
    let sign: ProxyError = SendError::Sign(SignError::Unsignable("x")).into();
    assert!(matches!(sign, ProxyError::Sign(_)));
    let upstream: ProxyError = SendError::Upstream(UpstreamError::Timeout("x")).into();
    assert!(matches!(upstream, ProxyError::Upstream(_)));
    let session: ProxyError = SendError::Session(CreateSessionError::Credentials).into();
    assert!(matches!(session, ProxyError::Session(_)));
}

#[test]
fn messages_name_the_cause_but_never_internals() {
    let reply = ProxyError::from(upstream_connect()).reply();
    assert!(
        reply.message.contains("s3express-usw2-az1"),
        "{}",
        reply.message
    );
    assert!(
        reply.message.contains("Connection refused"),
        "{}",
        reply.message
    );
    let internal = ProxyError::Internal("secret internal detail".into()).reply();
    assert!(!internal.message.contains("secret internal detail"));
    let bad = ProxyError::from(CreateSessionError::BadResponse("<SessionToken>t".into())).reply();
    assert!(!bad.message.contains("SessionToken"));
}

#[test]
fn the_response_is_s3_xml_with_the_request_id_and_no_body_for_head() {
    let response =
        ProxyError::from(PolicyError::ReadOnly("PutObject")).into_response("REQ1", false);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["x-amz-request-id"], "REQ1");
    assert_eq!(response.headers()["content-type"], "application/xml");
    let head = ProxyError::from(PolicyError::ReadOnly("PutObject")).into_response("REQ2", true);
    assert!(http_body::Body::is_end_stream(head.body()));
    assert_ne!(
        head.headers()["content-length"],
        "0",
        "HEAD keeps the length of the body it omits"
    );
}

#[test]
fn every_auth_error_maps_to_s3s_status_and_code_and_only_a_407_asks_for_proxy_auth() {
    use crate::admit::identity::ProxyAuthFailure;
    let cases: &[(AuthError, u16, &str)] = &[
        (
            AuthError::ProxyAuth(ProxyAuthFailure::Missing),
            407,
            "ProxyAuthenticationRequired",
        ),
        (
            AuthError::ProxyAuth(ProxyAuthFailure::WrongSecret),
            407,
            "ProxyAuthenticationRequired",
        ),
        (AuthError::Anonymous, 403, "AccessDenied"),
        (
            AuthError::Malformed {
                query: false,
                reason: "x",
            },
            400,
            "AuthorizationHeaderMalformed",
        ),
        (
            AuthError::Malformed {
                query: true,
                reason: "x",
            },
            400,
            "AuthorizationQueryParametersError",
        ),
        (AuthError::UnsupportedSignature, 400, "InvalidRequest"),
        (AuthError::MissingContentSha256, 400, "InvalidRequest"),
        (AuthError::InvalidContentSha256, 400, "InvalidArgument"),
        (AuthError::InvalidAccessKeyId, 403, "InvalidAccessKeyId"),
        (
            AuthError::SignatureDoesNotMatch("x"),
            403,
            "SignatureDoesNotMatch",
        ),
        (AuthError::RequestTimeTooSkewed, 403, "RequestTimeTooSkewed"),
        (AuthError::RequestExpired, 403, "AccessDenied"),
        (AuthError::RequestNotYetValid, 403, "AccessDenied"),
        (AuthError::InvalidToken("x"), 400, "InvalidToken"),
        (AuthError::ExpiredToken, 400, "ExpiredToken"),
        (AuthError::AccessDenied("x"), 403, "AccessDenied"),
        (AuthError::InvalidCopySource, 400, "InvalidArgument"),
        (AuthError::InvalidSessionMode, 400, "InvalidArgument"),
    ];
    for &(error, status, code) in cases {
        let reply = ProxyError::from(error).reply();
        assert_eq!(
            (reply.status.as_u16(), reply.code.as_str()),
            (status, code),
            "{error:?}"
        );
        assert_eq!(reply.message, error.to_string(), "{error:?}");
        let response = ProxyError::from(error).into_response("REQ", false);
        let challenge = response.headers().get(http::header::PROXY_AUTHENTICATE);
        match status {
            407 => assert_eq!(challenge.unwrap(), "Basic realm=\"s3x-proxy\""),
            _ => assert!(challenge.is_none(), "{error:?}"),
        }
    }
    // A chunk signature found wrong while the body streams is the client's 403 too.
    let chunk = AuthError::SignatureDoesNotMatch("a chunk signature does not match");
    let reply = ProxyError::from(ClientBodyError::Read(Box::new(chunk))).reply();
    assert_eq!(
        (reply.status.as_u16(), reply.code.as_str()),
        (403, "SignatureDoesNotMatch")
    );
}
