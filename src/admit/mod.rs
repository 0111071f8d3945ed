//! Admit (`--access-file`): who a request comes from, and whether they may do what routing
//! found, before anything goes upstream. Forward mode and tunnels present
//! `Proxy-Authorization: Basic` (a tunnel is bound to the client that opened it); endpoint mode
//! presents the client's own SigV4 signature, which must cover every `x-amz-*` header and says
//! what the body must hash to (checked later as it streams). A client's own CreateSession in
//! endpoint mode is answered with session credentials minted for it.

pub mod aws_chunked;
pub mod copy_source;
pub mod identity;
pub(crate) mod repeats;

use std::time::SystemTime;

use http::request::Parts;
use http::{header, Response};

use crate::admit::identity::{
    requested_mode, AccessControl, Admission, AuthError, BodyCheck, Principal, Refusal,
};
use crate::body::ProxyBody;
use crate::respond::create_session_answer;
use crate::route::Route;

/// Where a request came from: the client's address, and whether it arrived directly on a
/// listener (forward-proxy absolute form or endpoint mode) or inside an intercepted CONNECT
/// tunnel, whose target host is then the truth.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// The client's address.
    pub client: std::net::SocketAddr,
    /// The CONNECT target host (lowercase, without port) of the tunnel the request came through.
    pub tunnel: Option<std::sync::Arc<str>>,
    /// With `--access-file`: the client that opened the tunnel (its `Proxy-Authorization`).
    pub identity: Option<Principal>,
}

impl Arrival {
    /// A request straight on a listener.
    pub fn direct(client: std::net::SocketAddr) -> Self {
        Self {
            client,
            tunnel: None,
            identity: None,
        }
    }
}

/// Who sent the request: the tunnel's client (under the access list in force now), the
/// `Proxy-Authorization` of a forward-mode request, or the SigV4 signature of an endpoint-mode
/// one, with what that signature says of the body (a SHA-256, chunk signatures). Runs before
/// routing, on the request as received: 407 before any 403.
pub fn identify(
    access: &AccessControl,
    parts: &Parts,
    arrival: &Arrival,
    now: SystemTime,
) -> Result<Admission, Refusal> {
    let principal = if let Some(principal) = &arrival.identity {
        access.refresh(principal)?
    } else if forward_mode(parts) {
        access.authenticate_basic(parts.headers.get(header::PROXY_AUTHORIZATION))?
    } else {
        return access.verify_sigv4(parts, now);
    };
    Ok(Admission {
        principal,
        body: BodyCheck::None,
    })
}

/// A request that names its target as a proxy target (absolute form over HTTP/1.x); h2 and
/// origin-form requests on the listener are endpoint mode.
fn forward_mode(parts: &Parts) -> bool {
    parts.uri.scheme().is_some() && parts.version < http::Version::HTTP_2
}

/// Whether `who` may do what `route` says: the bucket (and a copy's source bucket, a rename's
/// source) against its globs, the operation against its access level, a minted session against
/// its bucket and mode.
pub fn permit(who: &Principal, route: &Route, parts: &Parts) -> Result<(), AuthError> {
    let bucket = route.bucket_name();
    let copy_source = parts.headers.get("x-amz-copy-source");
    who.may(route.operation, bucket.as_deref(), copy_source)?;
    match parts.headers.get("x-amz-rename-source") {
        Some(source) => who.may_rename_from(bucket.as_deref(), source),
        None => Ok(()),
    }
}

/// A client's own CreateSession: in endpoint mode, session credentials minted for the client and
/// the bucket, which later requests sign with; in forward mode and tunnels the client is known
/// by its Proxy-Authorization, so `None`: the placeholder answer does.
pub fn minted_session(
    access: &AccessControl,
    who: &Principal,
    route: &Route,
    parts: &Parts,
    arrival: &Arrival,
    request_id: &str,
) -> Result<Option<Response<ProxyBody>>, AuthError> {
    if arrival.identity.is_some() || forward_mode(parts) {
        return Ok(None);
    }
    let bucket = route
        .bucket_name()
        .ok_or(AuthError::AccessDenied("CreateSession names no bucket"))?;
    let mode = requested_mode(&parts.headers)?;
    let minted = access.create_session(who, &bucket, mode, SystemTime::now())?;
    Ok(Some(create_session_answer(
        request_id,
        &parts.headers,
        minted.body(),
    )))
}
