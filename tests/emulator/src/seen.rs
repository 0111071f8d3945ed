//! The bounded log of what every request looked like: host, SNI, credentials, scope, outcome.

use std::collections::VecDeque;

use crate::auth::Head;
use crate::hosts::Endpoint;
use crate::store::{Mode, State};

/// The kind of endpoint a request's Host named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// `BUCKET.s3express-ZONE.REGION.amazonaws.com` (and its FIPS, dual-stack, China forms), or
    /// the unsupported path-style `s3express-ZONE.REGION.amazonaws.com`.
    Zonal,
    /// `s3express-control.REGION.amazonaws.com`.
    Control,
    /// A general-purpose S3 host: `s3.amazonaws.com`, `s3.REGION.amazonaws.com`, ...
    GeneralPurpose,
    /// Anything else.
    Unknown,
}

/// The credentials a request was signed with, named by its access key id (from the
/// Authorization header or a presigned `X-Amz-Credential`), whether or not the signature held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// No Authorization header and no presigned credential.
    Anonymous,
    /// The IAM access key id, current or rotated out.
    Iam,
    /// The access key id of a ReadOnly session.
    SessionReadOnly,
    /// The access key id of a ReadWrite session.
    SessionReadWrite,
    /// An access key id the emulator never issued or accepted, or an Authorization header that
    /// does not parse.
    Unknown,
}

impl AuthKind {
    /// "anonymous", "iam", "session-ro", "session-rw" or "unknown" (as in
    /// [`crate::Counters::auth_by_operation`]).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Anonymous => "anonymous",
            AuthKind::Iam => "iam",
            AuthKind::SessionReadOnly => "session-ro",
            AuthKind::SessionReadWrite => "session-rw",
            AuthKind::Unknown => "unknown",
        }
    }
}

/// One request as the emulator saw it (see [`crate::Emulator::requests_log`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// The `x-amz-request-id` of the answer.
    pub request_id: String,
    pub method: String,
    /// The Host header (or the h2 `:authority`), as sent.
    pub host: String,
    /// The TLS SNI of the connection; None when the client sent none.
    pub sni: Option<String>,
    /// The path and query as sent (still percent-encoded).
    pub path: String,
    pub query: String,
    pub endpoint: EndpointKind,
    /// The bucket the request addressed, when it named one.
    pub bucket: Option<String>,
    /// The S3 operation name ("GetObject"), or "Unknown".
    pub operation: String,
    pub auth: AuthKind,
    /// The access key id, SigV4 service and region of the credential scope, when there is one.
    pub access_key_id: Option<String>,
    pub service: Option<String>,
    pub region: Option<String>,
    /// `x-amz-s3session-token` / `x-amz-security-token` were present.
    pub s3session_token: bool,
    pub security_token: bool,
    /// The signature was checked and held.
    pub signature_verified: bool,
    /// A `Content-MD5` header was present (directory buckets refuse it).
    pub content_md5: bool,
    /// The bucket was named in the path rather than the host: path-style, on a general-purpose
    /// host or on a bare Zonal host (`s3express-ZONE.REGION.amazonaws.com`, which S3 refuses).
    pub path_style: bool,
    /// Every request header as received: lowercase names, values as sent (the h2
    /// `:authority` appears as `host`).
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// The S3 error code of the answer, if it was an error.
    pub error_code: Option<String>,
}

/// The credential a request names: its Authorization header, else a presigned `X-Amz-Credential`.
/// (access key id, region, service), or None when it names none; `Some(None)` when it does not
/// parse.
fn credential(head: &Head) -> Option<Option<(String, String, String)>> {
    if let Some(value) = head.get("authorization") {
        return Some(
            crate::sigv4::parse_authorization(value)
                .ok()
                .map(|a| (a.access_key_id, a.region, a.service)),
        );
    }
    let q = crate::route::Query::parse(&head.raw_query);
    let cred = q.get("X-Amz-Credential")?;
    let parts: Vec<&str> = cred.split('/').collect();
    Some(match parts.as_slice() {
        [akid, _, region, service, _] => {
            Some((akid.to_string(), region.to_string(), service.to_string()))
        }
        _ => None,
    })
}

/// What the log records of a request before it is processed (the outcome is added after).
pub(crate) fn observe(
    state: &State,
    head: &Head,
    endpoint: &Endpoint,
    request_id: &str,
    sni: Option<String>,
) -> SeenRequest {
    let (auth, scope) = match credential(head) {
        None => (AuthKind::Anonymous, None),
        Some(None) => (AuthKind::Unknown, None),
        Some(Some((akid, region, service))) => {
            (state.auth_kind_of(&akid), Some((akid, region, service)))
        }
    };
    let (access_key_id, region, service) = match scope {
        Some((a, r, s)) => (Some(a), Some(r), Some(s)),
        None => (None, None, None),
    };
    SeenRequest {
        request_id: request_id.to_string(),
        method: head.method.clone(),
        host: head.get("host").unwrap_or("").to_string(),
        sni,
        path: head.raw_path.clone(),
        query: head.raw_query.clone(),
        endpoint: endpoint.kind(),
        bucket: None,
        operation: "Unknown".into(),
        auth,
        access_key_id,
        service,
        region,
        s3session_token: head.get("x-amz-s3session-token").is_some(),
        security_token: head.get("x-amz-security-token").is_some(),
        signature_verified: false,
        content_md5: head.get("content-md5").is_some(),
        path_style: match endpoint {
            Endpoint::ZonalPathStyle { .. } => true,
            Endpoint::GeneralPurpose { bucket: None, .. } => head.raw_path.len() > 1,
            _ => false,
        },
        headers: head.headers.clone(),
        status: 0,
        error_code: None,
    }
}

impl State {
    /// The kind of credentials an access key id belongs to.
    pub fn auth_kind_of(&self, akid: &str) -> AuthKind {
        if self.is_iam_key(akid) {
            return AuthKind::Iam;
        }
        match self.sessions().values().find(|s| s.access_key_id == akid) {
            Some(s) if s.mode == Mode::ReadOnly => AuthKind::SessionReadOnly,
            Some(_) => AuthKind::SessionReadWrite,
            None => AuthKind::Unknown,
        }
    }
}

/// The last `limit` requests.
#[derive(Debug)]
pub(crate) struct Log {
    pub limit: usize,
    pub entries: VecDeque<SeenRequest>,
}

impl Log {
    pub fn new(limit: usize) -> Log {
        Log {
            limit,
            entries: VecDeque::new(),
        }
    }

    pub fn push(&mut self, r: SeenRequest) {
        if self.limit == 0 {
            return;
        }
        while self.entries.len() >= self.limit {
            self.entries.pop_front();
        }
        self.entries.push_back(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_entries() {
        let mut log = Log::new(2);
        let seen = |id: &str| SeenRequest {
            request_id: id.into(),
            method: "GET".into(),
            host: String::new(),
            sni: None,
            path: "/".into(),
            query: String::new(),
            endpoint: EndpointKind::Unknown,
            bucket: None,
            operation: "Unknown".into(),
            auth: AuthKind::Anonymous,
            access_key_id: None,
            service: None,
            region: None,
            s3session_token: false,
            security_token: false,
            signature_verified: false,
            content_md5: false,
            path_style: false,
            headers: Vec::new(),
            status: 400,
            error_code: None,
        };
        for id in ["a", "b", "c"] {
            log.push(seen(id));
        }
        let ids: Vec<&str> = log.entries.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        let mut off = Log::new(0);
        off.push(seen("x"));
        assert!(off.entries.is_empty());
    }
}
