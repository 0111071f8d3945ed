//! Requests straight to the emulator, signed here the way an SDK signs them: CreateSession with
//! the IAM keys, then SigV4 with the session keys and `x-amz-s3session-token`. This is the
//! baseline the proxy's figures are compared with.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderValue, Method, Request};

use crate::client::{full, Body, Sender};

/// The IAM keys the emulator accepts by default.
const IAM_KEY: &str = "AKIDEMULATOREXAMPLE";
const IAM_SECRET: &str = "emulator/secret/EXAMPLEKEY";
const REGION: &str = "us-west-2";

/// Signs requests for one Zonal host with one set of credentials.
pub struct Signer {
    identity: Identity,
    session: bool,
    host: String,
}

impl Signer {
    /// Signs with the IAM keys (for CreateSession).
    pub fn iam(host: &str) -> Signer {
        let creds = Credentials::new(IAM_KEY, IAM_SECRET, None, None, "bench");
        Signer {
            identity: creds.into(),
            session: false,
            host: host.to_owned(),
        }
    }

    /// Creates a ReadWrite session on `sender` (a connection to `host`) and signs with it.
    pub async fn session(sender: &mut Sender, host: &str) -> Signer {
        let iam = Signer::iam(host);
        let mut request = Request::get("/?session")
            .header("host", host)
            .header("x-amz-create-session-mode", "ReadWrite")
            .body(full(""))
            .unwrap();
        iam.sign(&mut request, false);
        let xml = String::from_utf8(sender.call(request).await.to_vec()).expect("UTF-8 XML");
        let field = |name: &str| {
            let start = xml.find(&format!("<{name}>")).expect(name) + name.len() + 2;
            let end = xml[start..].find('<').expect(name) + start;
            xml[start..end].to_owned()
        };
        let creds = Credentials::new(
            field("AccessKeyId"),
            field("SecretAccessKey"),
            Some(field("SessionToken")),
            None,
            "bench",
        );
        Signer {
            identity: creds.into(),
            session: true,
            host: host.to_owned(),
        }
    }

    /// A signed request for `path` with `body`; `unsigned` declares UNSIGNED-PAYLOAD instead of
    /// hashing the (empty) body.
    pub fn request(&self, method: Method, path: &str, body: Body, unsigned: bool) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .body(body)
            .unwrap();
        self.sign(&mut request, unsigned);
        request
    }

    /// Adds the SigV4 headers for service `s3express`.
    fn sign(&self, request: &mut Request<Body>, unsigned: bool) {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if self.session {
            settings.session_token_name_override = Some("x-amz-s3session-token");
        }
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(REGION)
            .name("s3express")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let uri = format!("https://{}{}", self.host, request.uri());
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().expect("ASCII header")));
        let body = if unsigned {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(&[])
        };
        let signable =
            SignableRequest::new(request.method().as_str(), uri, headers, body).expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        let (headers, _) = instructions.into_parts();
        for h in headers {
            let value = HeaderValue::from_str(h.value()).expect("header value");
            request.headers_mut().insert(h.name(), value);
        }
    }
}
