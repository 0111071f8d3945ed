//! Rejections: what in S3's answer to an attempt another attempt would fix: a session token S3
//! no longer takes, IAM credentials it no longer takes, or a general-purpose bucket that lives
//! in another region.

use http::{Method, Response, StatusCode};

use crate::body::{full, ProxyBody};
use crate::route::names::Region;
use crate::upstream::{read_answer, UpstreamError};
use crate::xml;

/// Why an attempt is worth repeating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// S3 rejected the session token (the label says why).
    SessionToken(&'static str),
    /// S3 rejected the IAM credentials (rotated keys, an expired token).
    IamCredentials,
    /// The bucket lives in this region (`x-amz-bucket-region` on a 301 or 400).
    Region(Region),
    /// A session-signed HEAD got a bare 400: HEAD answers have no body to name the code, so
    /// the sender asks with a one-byte GET (see `send`).
    Unclear,
}

impl Rejection {
    /// The `reason` label of `s3x_proxy_upstream_retries_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::SessionToken(reason) => reason,
            Rejection::IamCredentials => "iam_credentials",
            Rejection::Region(_) => "wrong_region",
            Rejection::Unclear => "unclear",
        }
    }
}

/// What the attempt was signed with, as far as reading its answer goes.
pub enum SignedWith<'a> {
    /// A session.
    Session,
    /// IAM credentials, for a general-purpose bucket in `region` (None: S3 Express).
    Iam(Option<&'a Region>),
}

/// Reads S3's answer for a rejection another attempt could fix. An error's body is read to find
/// its code, so the response returned carries it again.
pub async fn classify(
    method: &Method,
    response: Response<ProxyBody>,
    signed: SignedWith<'_>,
) -> Result<(Response<ProxyBody>, Option<Rejection>), UpstreamError> {
    let status = response.status();
    if let SignedWith::Iam(Some(signed_region)) = signed {
        if let Some(region) = moved_to(&response, signed_region) {
            return Ok((response, Some(Rejection::Region(region))));
        }
    }
    let may_be_rejection = match signed {
        SignedWith::Session => status == StatusCode::BAD_REQUEST,
        SignedWith::Iam(_) => status == StatusCode::BAD_REQUEST || status == StatusCode::FORBIDDEN,
    };
    if !may_be_rejection {
        return Ok((response, None));
    }
    if *method == Method::HEAD {
        // A HEAD error has no body naming its code.
        let unclear = matches!(signed, SignedWith::Session) && status == StatusCode::BAD_REQUEST;
        return Ok((response, unclear.then_some(Rejection::Unclear)));
    }
    let (parts, body) = response.into_parts();
    let bytes = read_answer(body).await?;
    let code = xml::parse_error(&String::from_utf8_lossy(&bytes)).map(|e| e.code);
    let rejection = match (signed, code.as_deref()) {
        (SignedWith::Session, Ok(code)) => session_rejected(code).map(Rejection::SessionToken),
        (SignedWith::Iam(_), Ok(code)) if iam_credentials_rejected(code) => {
            Some(Rejection::IamCredentials)
        }
        _ => None,
    };
    Ok((Response::from_parts(parts, full(bytes)), rejection))
}

/// The retry reason for S3's codes of a session token it no longer takes.
pub fn session_rejected(code: &str) -> Option<&'static str> {
    match code {
        "ExpiredToken" => Some("expired_token"),
        "InvalidToken" => Some("invalid_token"),
        _ => None,
    }
}

/// S3's codes for IAM credentials it no longer takes.
pub fn iam_credentials_rejected(code: &str) -> bool {
    matches!(code, "InvalidAccessKeyId" | "ExpiredToken" | "InvalidToken")
}

/// The region a 301 PermanentRedirect or 400 AuthorizationHeaderMalformed names for the
/// bucket, when it is not the one the request was signed for. The region becomes a host name
/// and a cache entry, so it must look like a region and be in the partition of the host the
/// request went to: a 301 never moves a bucket to another partition. Anything else is logged
/// and S3's answer relayed as it is.
fn moved_to(response: &Response<ProxyBody>, signed: &Region) -> Option<Region> {
    let status = response.status();
    if status != StatusCode::MOVED_PERMANENTLY && status != StatusCode::BAD_REQUEST {
        return None;
    }
    let header = response.headers().get("x-amz-bucket-region")?;
    let Some(region) = header
        .to_str()
        .ok()
        .and_then(|h| Region::parse_learned(h).ok())
    else {
        let shown = String::from_utf8_lossy(&header.as_bytes()[..header.len().min(64)]);
        tracing::warn!(value = ?shown, %signed, "S3's x-amz-bucket-region is not a region; relaying its answer");
        return None;
    };
    if region.partition() != signed.partition() {
        tracing::warn!(%region, %signed, "S3's x-amz-bucket-region is in another partition; relaying its answer");
        return None;
    }
    (region != *signed).then_some(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, region: Option<&str>, body: &str) -> Response<ProxyBody> {
        let mut response = Response::new(full(body.to_owned()));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(region) = region {
            response
                .headers_mut()
                .insert("x-amz-bucket-region", region.parse().unwrap());
        }
        response
    }

    fn error(code: &str) -> String {
        format!("<Error><Code>{code}</Code><Message>m</Message></Error>")
    }

    async fn rejection(
        method: Method,
        response: Response<ProxyBody>,
        signed: SignedWith<'_>,
    ) -> Option<Rejection> {
        classify(&method, response, signed).await.unwrap().1
    }

    #[tokio::test]
    async fn answers_that_another_attempt_fixes_are_told_apart() {
        let west = Region::parse("us-west-2").unwrap();
        let east = Region::parse("eu-west-1").unwrap();
        let gp = SignedWith::Iam(Some(&west));
        assert_eq!(
            rejection(Method::GET, answer(301, Some("eu-west-1"), ""), gp).await,
            Some(Rejection::Region(east.clone()))
        );
        let malformed = error("AuthorizationHeaderMalformed");
        assert_eq!(
            rejection(
                Method::PUT,
                answer(400, Some("eu-west-1"), &malformed),
                SignedWith::Iam(Some(&west))
            )
            .await,
            Some(Rejection::Region(east))
        );
        assert_eq!(
            rejection(
                Method::GET,
                answer(301, Some("us-west-2"), ""),
                SignedWith::Iam(Some(&west))
            )
            .await,
            None,
            "the region it was signed for is no news"
        );
        assert_eq!(
            rejection(
                Method::GET,
                answer(200, Some("eu-west-1"), ""),
                SignedWith::Iam(Some(&west))
            )
            .await,
            None
        );
        for code in ["InvalidAccessKeyId", "ExpiredToken", "InvalidToken"] {
            assert_eq!(
                rejection(
                    Method::GET,
                    answer(403, None, &error(code)),
                    SignedWith::Iam(None)
                )
                .await,
                Some(Rejection::IamCredentials),
                "{code}"
            );
        }
        assert_eq!(
            rejection(
                Method::GET,
                answer(403, None, &error("AccessDenied")),
                SignedWith::Iam(None)
            )
            .await,
            None
        );
        assert_eq!(
            rejection(
                Method::GET,
                answer(400, None, &error("ExpiredToken")),
                SignedWith::Session
            )
            .await,
            Some(Rejection::SessionToken("expired_token"))
        );
        assert_eq!(
            rejection(Method::HEAD, answer(400, None, ""), SignedWith::Session).await,
            Some(Rejection::Unclear),
            "a HEAD's bare 400 names no code"
        );
    }

    #[tokio::test]
    async fn a_region_that_is_no_region_or_in_another_partition_is_no_move() {
        let west = Region::parse("us-west-2").unwrap();
        let gov = Region::parse("us-gov-west-1").unwrap();
        let china = Region::parse("cn-north-1").unwrap();
        for (signed, named, moved) in [
            (&west, "evil-region", false),
            (&west, "us-west-2.evil.example", false),
            (&west, "cn-north-1", false),
            (&west, "us-gov-east-1", false),
            (&west, "us-iso-east-1", false),
            (&china, "us-east-1", false),
            (&china, "cn-northwest-1", true),
            (&gov, "us-gov-east-1", true),
            (&gov, "us-east-1", false),
            (&west, "eu-west-1", true),
        ] {
            for status in [301, 400] {
                let body = error("AuthorizationHeaderMalformed");
                let got = rejection(
                    Method::GET,
                    answer(status, Some(named), &body),
                    SignedWith::Iam(Some(signed)),
                )
                .await;
                let expected = moved.then(|| Rejection::Region(Region::parse(named).unwrap()));
                assert_eq!(got, expected, "{signed} told {named} ({status})");
            }
        }
    }

    #[tokio::test]
    async fn the_answer_read_is_given_back_whole() {
        let body = error("InvalidToken");
        let (response, _) = classify(&Method::GET, answer(400, None, &body), SignedWith::Session)
            .await
            .unwrap();
        let bytes = crate::body::collect_limited(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert_eq!(bytes, body.as_bytes());
    }
}
