//! The rules: every outcome that is not the expected success is either explained by a fault
//! the ledger holds (and, where the emulator's request log can say so, by what S3 answered to
//! that very request), or unexpected. benches/README.md states the same rules in prose.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use s3x_emulator::SeenRequest;
use tokio::time::Instant;

use crate::client::Mode;
use crate::faults::REJECT_CODE;
use crate::Shared;

/// Bodies up to this size with a known length are kept by the proxy and replayed with a fresh
/// session after a token error (RETAIN_BODY_LIMIT in src/proxy.rs). Bodies of unknown length
/// are always kept (a part at a time).
const REPLAYABLE_LIMIT: u64 = 64 * 1024;

/// What a worker did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    PutSmall,
    Put1MiB,
    PutUnknownSmall,
    PutMultipart,
    Get,
    GetRange,
    Head,
    List,
    Copy,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::PutSmall => "PUT small (CL)",
            Op::Put1MiB => "PUT ~1 MiB (CL, streamed)",
            Op::PutUnknownSmall => "PUT unknown length <8 MiB",
            Op::PutMultipart => "PUT unknown length >8 MiB (multipart)",
            Op::Get => "GET whole",
            Op::GetRange => "GET range",
            Op::Head => "HEAD",
            Op::List => "ListObjectsV2",
            Op::Copy => "CopyObject",
            Op::Delete => "DELETE",
        }
    }

    /// A PutObject that carries a body.
    fn puts_data(self) -> bool {
        matches!(
            self,
            Op::PutSmall | Op::Put1MiB | Op::PutUnknownSmall | Op::PutMultipart
        )
    }
}

/// One request as sent.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub op: Op,
    pub mode: Mode,
    pub worker: usize,
    pub method: Method,
    /// The request target as sent (absolute URI, path-style path, or origin form).
    pub target: String,
    pub bucket: String,
    pub key: Option<String>,
    pub body_len: u64,
    /// The request declared its length (Content-Length).
    pub declared_length: bool,
    pub started: Instant,
    /// Seconds since the run started.
    pub at: f64,
}

impl Attempt {
    /// Could the proxy send this request again after a token error?
    pub fn replayable(&self) -> bool {
        !(self.declared_length && self.body_len > REPLAYABLE_LIMIT)
    }
}

/// What came back.
pub enum Observed {
    /// A whole answer that was not the expected success (or was, but failed a check:
    /// `problem` says how).
    Answer {
        status: StatusCode,
        headers: Box<HeaderMap>,
        body: Bytes,
        problem: Option<String>,
    },
    /// A response head, then the body ended with an error.
    Cut {
        status: StatusCode,
        headers: Box<HeaderMap>,
        received: usize,
        mismatch_at: Option<usize>,
        error: String,
    },
    /// No response head: the connection or the request failed.
    NoAnswer(String),
    /// Nothing within the deadline.
    Hang(String),
}

/// Explanations where the fault explains the error but the proxy could have done better (S3's
/// own answer existed and the client did not get it): listed apart in the report.
pub fn degraded(why: &str) -> bool {
    why.contains("not relayed") || why.contains("client connection failed")
}

pub enum Verdict {
    Explained(&'static str),
    Unexpected(String),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The S3 error code in an XML error body.
pub fn error_code(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("<Code>")? + 6;
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].to_owned())
}

/// The emulator's log entry for the request it answered with `id`.
fn by_request_id(shared: &Shared, id: &str) -> Option<SeenRequest> {
    shared
        .emulator
        .requests_log()
        .into_iter()
        .rev()
        .find(|r| r.request_id == id)
}

/// The latest logged request for `bucket`/`key` the emulator answered with one of `codes`.
fn by_key(shared: &Shared, bucket: &str, key: &str, codes: &[&str]) -> Option<SeenRequest> {
    let want = format!("/{key}");
    shared.emulator.requests_log().into_iter().rev().find(|r| {
        r.bucket.as_deref() == Some(bucket)
            && percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy() == want
            && r.error_code.as_deref().is_some_and(|c| codes.contains(&c))
    })
}

/// Did a recent CreateSession for `bucket` get `code`?
fn create_session_failed(shared: &Shared, bucket: &str, code: &str) -> bool {
    shared.emulator.requests_log().iter().any(|r| {
        r.operation == "CreateSession"
            && r.bucket.as_deref() == Some(bucket)
            && r.error_code.as_deref() == Some(code)
    })
}

/// Did the proxy send this very request (same method, key and query) twice, and did S3 reject
/// the token both times? Then the one replay the proxy allows was spent, and the second
/// rejection reached the client.
fn retried_and_rejected_again(shared: &Shared, a: &Attempt, seen: &SeenRequest) -> bool {
    let Some(key) = a.key.as_deref() else {
        return false;
    };
    let want = format!("/{key}");
    let rejected = shared
        .emulator
        .requests_log()
        .iter()
        .filter(|r| {
            r.bucket.as_deref() == Some(a.bucket.as_str())
                && r.method == seen.method
                && r.query == seen.query
                && percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy() == want
                && matches!(
                    r.error_code.as_deref(),
                    Some("ExpiredToken" | "InvalidToken")
                )
        })
        .count();
    rejected >= 2
}

/// Errors the emulator answered for requests on this key, newest last (at most 3).
fn errors_on_key(shared: &Shared, a: &Attempt) -> Vec<String> {
    let Some(key) = a.key.as_deref() else {
        return Vec::new();
    };
    let want = format!("/{key}");
    let found: Vec<String> = shared
        .emulator
        .requests_log()
        .into_iter()
        .filter(|r| {
            r.bucket.as_deref() == Some(a.bucket.as_str())
                && r.error_code.is_some()
                && percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy() == want
        })
        .map(|r| {
            format!(
                "{} {} {:?}",
                r.operation,
                r.status,
                r.error_code.unwrap_or_default()
            )
        })
        .collect();
    found[found.len().saturating_sub(3)..].to_vec()
}

/// Why S3 failed this PUT (or a request the proxy made for it: CreateMultipartUpload,
/// UploadPart, CompleteMultipartUpload), if an injected fault explains it: the latest error
/// the emulator answered for this key. `early` keeps only answers S3 gives before reading the
/// body (RejectEarly, token errors), which are the ones that can cut the proxy off upstream.
fn put_failed_by_fault(
    shared: &Shared,
    a: &Attempt,
    lifetime: Duration,
    early: bool,
) -> Option<&'static str> {
    let key = a.key.as_deref()?;
    if !a.op.puts_data() {
        return None;
    }
    let codes: &[&str] = if early {
        &[REJECT_CODE, "ExpiredToken", "InvalidToken"]
    } else {
        &[
            REJECT_CODE,
            "ExpiredToken",
            "InvalidToken",
            "SlowDown",
            "InternalError",
        ]
    };
    let seen = by_key(shared, &a.bucket, key, codes)?;
    let tokens = shared.ledger().token_faults_during(a.started, lifetime);
    match seen.error_code.as_deref() {
        Some(REJECT_CODE) => Some("RejectEarly"),
        Some("SlowDown") => Some("SlowDown"),
        Some("InternalError") => Some("InternalError"),
        Some(_) if !a.replayable() && tokens > 0 => Some("token error"),
        Some(_) if tokens >= 2 && retried_and_rejected_again(shared, a, &seen) => {
            Some("token error after the retry")
        }
        _ => None,
    }
}

/// Explained or unexpected: see benches/README.md, "Classification".
pub fn classify(shared: &Shared, a: &Attempt, o: &Observed) -> Verdict {
    let lifetime = shared.session_lifetime;
    match o {
        Observed::Answer {
            problem: Some(p), ..
        } => Verdict::Unexpected(format!("check failed: {p}")),
        Observed::Answer {
            status,
            headers,
            body,
            problem: None,
        } => {
            let relayed =
                header(headers, "x-amz-id-2").is_some_and(|v| v.starts_with("s3x-emulator/"));
            if relayed {
                let id = header(headers, "x-amz-request-id").unwrap_or("");
                let Some(seen) = by_request_id(shared, id) else {
                    return Verdict::Unexpected(format!(
                        "a relayed {status} whose x-amz-request-id {id:?} is not in the emulator's log"
                    ));
                };
                if seen.status != status.as_u16() {
                    return Verdict::Unexpected(format!(
                        "relayed {status}, but the emulator answered {} {:?}",
                        seen.status, seen.error_code
                    ));
                }
                match seen.error_code.as_deref() {
                    Some("SlowDown") => Verdict::Explained("SlowDown 503 relayed"),
                    Some("InternalError") => Verdict::Explained("InternalError 500 relayed"),
                    Some("ExpiredToken" | "InvalidToken")
                        if !a.replayable()
                            && shared.ledger().token_faults_during(a.started, lifetime) > 0 =>
                    {
                        Verdict::Explained("token error relayed on a streamed PUT (not replayable)")
                    }
                    Some("ExpiredToken" | "InvalidToken")
                        if retried_and_rejected_again(shared, a, &seen)
                            && shared.ledger().token_faults_during(a.started, lifetime) >= 2 =>
                    {
                        Verdict::Explained(
                            "token error after the one retry: a second token fault spoiled the new session",
                        )
                    }
                    Some(code @ ("ExpiredToken" | "InvalidToken")) => Verdict::Unexpected(format!(
                        "S3's {code} reached the client on a request the proxy could replay \
                         ({} {}-byte body, {}; emulator op {}){}",
                        a.method,
                        a.body_len,
                        if a.declared_length { "Content-Length" } else { "no length" },
                        seen.operation,
                        if a.method == Method::HEAD {
                            " [a HEAD's 400 has no body to name its code; the proxy replays it \
                             only on a session at least 1 s old (head_bad_request)]"
                        } else {
                            ""
                        }
                    )),
                    Some(REJECT_CODE) if a.op.puts_data() => {
                        Verdict::Explained("RejectEarly 400 relayed")
                    }
                    other => Verdict::Unexpected(format!(
                        "relayed {status} {other:?} that no injected fault explains (emulator op {})",
                        seen.operation
                    )),
                }
            } else {
                // The proxy's own answer.
                let code = error_code(body).unwrap_or_else(|| match status.as_u16() {
                    503 if a.method == Method::HEAD => "SlowDown".into(),
                    500 if a.method == Method::HEAD => "InternalError".into(),
                    _ => String::new(),
                });
                if matches!(code.as_str(), "SlowDown" | "InternalError")
                    && shared.ledger().create_session_fault(&code)
                    && create_session_failed(shared, &a.bucket, &code)
                {
                    return Verdict::Explained("CreateSession fault passed on (no session)");
                }
                if *status == StatusCode::BAD_GATEWAY {
                    match put_failed_by_fault(shared, a, lifetime, true) {
                        Some("RejectEarly") => {
                            return Verdict::Explained(
                                "RejectEarly on a PUT answered 502 (S3's 400 not relayed)",
                            )
                        }
                        Some(_) => {
                            return Verdict::Explained(
                                "token error on a streamed PUT answered 502 (S3's 400 not relayed)",
                            )
                        }
                        None => {}
                    }
                }
                Verdict::Unexpected(format!(
                    "the proxy answered {status} {code:?} and no injected fault explains it"
                ))
            }
        }
        Observed::Cut {
            status,
            received,
            mismatch_at,
            error,
            ..
        } => {
            let is_get = matches!(a.op, Op::Get | Op::GetRange);
            if is_get && status.is_success() && mismatch_at.is_none() {
                match shared.ledger().claim_reset(*received) {
                    Some(true) => {
                        return Verdict::Explained("GET cut by ResetMidBody (exact bytes)")
                    }
                    Some(false) => {
                        return Verdict::Explained("GET cut by ResetMidBody (fewer bytes)")
                    }
                    None => {}
                }
            }
            Verdict::Unexpected(format!(
                "{status} head, then the body failed after {received} bytes{}: {error}",
                mismatch_at.map_or(String::new(), |m| format!(
                    " (bytes differ from offset {m})"
                ))
            ))
        }
        Observed::NoAnswer(error) => {
            // h2: a response body that fails is a stream reset, which can overtake the head
            // and data the proxy had queued for that stream.
            let h2_reset = a.mode == Mode::TunnelH2
                && matches!(a.op, Op::Get | Op::GetRange)
                && error.contains("stream error received");
            if h2_reset && shared.ledger().claim_reset(0).is_some() {
                return Verdict::Explained(
                    "GET in an h2 tunnel reset before its head (ResetMidBody)",
                );
            }
            match put_failed_by_fault(shared, a, lifetime, false) {
                Some("RejectEarly") => Verdict::Explained(
                    "RejectEarly on a PUT: client connection failed, S3's 400 not relayed",
                ),
                Some("SlowDown" | "InternalError") => Verdict::Explained(
                    "SlowDown/500 on a multipart PUT: client connection failed, S3's answer not relayed",
                ),
                Some(_) => Verdict::Explained(
                    "token error on a PUT: client connection failed, S3's 400 not relayed",
                ),
                None => {
                    let errors = errors_on_key(shared, a);
                    let hint = if errors.is_empty() {
                        String::new()
                    } else {
                        format!(" [S3 answered {} for this key]", errors.join(", "))
                    };
                    Verdict::Unexpected(format!("no answer: {error}{hint}"))
                }
            }
        }
        Observed::Hang(what) => Verdict::Unexpected(format!("hang: {what}")),
    }
}

/// What was sent and what came back, for the report.
pub fn describe(shared: &Shared, a: &Attempt, o: &Observed) -> String {
    let mut out = format!(
        "t={:.1}s worker {} ({}) {}: {} {} bucket={} key={:?} body={} bytes{}",
        a.at,
        a.worker,
        a.mode.name(),
        a.op.name(),
        a.method,
        a.target,
        a.bucket,
        a.key,
        a.body_len,
        if a.declared_length {
            " (Content-Length)"
        } else {
            " (no length)"
        },
    );
    let (status, headers, body) = match o {
        Observed::Answer {
            status,
            headers,
            body,
            ..
        } => (Some(status), Some(headers), Some(body)),
        Observed::Cut {
            status, headers, ..
        } => (Some(status), Some(headers), None),
        _ => (None, None, None),
    };
    if let (Some(status), Some(headers)) = (status, headers) {
        let id = header(headers, "x-amz-request-id").unwrap_or("-");
        let id2 = header(headers, "x-amz-id-2").unwrap_or("-");
        out.push_str(&format!(
            "\n    got {status}, x-amz-request-id {id}, x-amz-id-2 {id2}, content-length {}",
            header(headers, "content-length").unwrap_or("-")
        ));
        if let Some(body) = body.filter(|b| !b.is_empty()) {
            let text: String = String::from_utf8_lossy(body).chars().take(400).collect();
            out.push_str(&format!("\n    body: {text}"));
        }
        if let Some(seen) = by_request_id(shared, id) {
            out.push_str(&format!(
                "\n    emulator: {} {} op={} auth={} status={} code={:?}",
                seen.method,
                seen.path,
                seen.operation,
                seen.auth.as_str(),
                seen.status,
                seen.error_code
            ));
        }
    }
    if let Some(key) = &a.key {
        let want = format!("/{key}");
        let seen: Vec<String> = shared
            .emulator
            .requests_log()
            .into_iter()
            .filter(|r| {
                r.bucket.as_deref() == Some(a.bucket.as_str())
                    && percent_encoding::percent_decode_str(&r.path).decode_utf8_lossy() == want
            })
            .map(|r| {
                format!(
                    "{} {}?{} op={} status={} code={:?}",
                    r.method, r.path, r.query, r.operation, r.status, r.error_code
                )
            })
            .collect();
        for line in &seen[seen.len().saturating_sub(4)..] {
            out.push_str(&format!("\n    emulator saw: {line}"));
        }
    }
    out
}
