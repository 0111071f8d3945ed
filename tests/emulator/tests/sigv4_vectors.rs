//! Runs the emulator's SigV4 verifier against every case of the AWS SigV4 test suite, kept in
//! this crate's `vectors/sigv4` (Apache-2.0, see its LICENSE), or `$S3X_SIGV4_VECTORS`. A missing
//! suite fails the test: it never skips silently.

use std::path::{Path, PathBuf};

use s3x_emulator::sigv4::{self, Options, Request, UriEncoding};
use sha2::{Digest, Sha256};

fn vectors_dir() -> PathBuf {
    let dir = std::env::var_os("S3X_SIGV4_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/sigv4"));
    assert!(
        dir.is_dir(),
        "SigV4 test vectors not found at {} (set S3X_SIGV4_VECTORS)",
        dir.display()
    );
    dir
}

/// A request from `request.txt`: method, target, headers (folded lines joined), body.
struct Parsed {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_request(text: &str) -> Parsed {
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], text.as_bytes()[i + 2..].to_vec()),
        None => (text, Vec::new()),
    };
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let method = first.split(' ').next().expect("method").to_string();
    // The target may itself contain spaces: it runs to the last space (before HTTP/1.1).
    let target = match first.rfind(" HTTP/") {
        Some(end) => &first[method.len() + 1..end],
        None => &first[method.len() + 1..],
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            // obs-fold: the continuation replaces the line break with a space.
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.to_ascii_lowercase(), v.to_string()));
        }
    }
    Parsed {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body,
    }
}

struct Context {
    access_key_id: String,
    secret: String,
    token: Option<String>,
    region: String,
    service: String,
    amz_date: String,
    normalize: bool,
    sign_body: bool,
    omit_token: bool,
    encoding: UriEncoding,
}

fn read(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

fn context(dir: &Path, req: &Parsed) -> Context {
    let Some(json) = read(dir, "context.json") else {
        // The two smithy-rs cases without a context (double-encode-path, double-url-encode):
        // smithy's defaults (double encoding, normalisation), its test time, and service and
        // region from the host (SERVICE.REGION.amazonaws.com).
        let host = &req
            .headers
            .iter()
            .find(|(n, _)| n == "host")
            .expect("host")
            .1;
        let labels: Vec<&str> = host.split('.').collect();
        let at = labels
            .iter()
            .position(|l| *l == "amazonaws")
            .expect("an AWS host");
        return Context {
            access_key_id: "AKIDEXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            token: None,
            region: labels[at - 1].into(),
            service: labels[at - 2].into(),
            amz_date: "20210511T154045Z".into(),
            normalize: true,
            sign_body: false,
            omit_token: false,
            encoding: UriEncoding::Double,
        };
    };
    let v: serde_json::Value = serde_json::from_str(&json).expect("context.json");
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    let b = |p: &str, d: bool| v.pointer(p).and_then(|x| x.as_bool()).unwrap_or(d);
    let ts = s("/timestamp").expect("timestamp");
    Context {
        access_key_id: s("/credentials/access_key_id").expect("key id"),
        secret: s("/credentials/secret_access_key").expect("secret"),
        token: s("/credentials/token"),
        region: s("/region").expect("region"),
        service: s("/service").expect("service"),
        amz_date: ts.replace(['-', ':'], ""),
        normalize: b("/normalize", true),
        sign_body: b("/sign_body", true),
        omit_token: b("/omit_session_token", false),
        encoding: UriEncoding::Single,
    }
}

fn trim_end(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// Checks canonical request, string to sign and signature for one case; returns whether a
/// signed request was also verified end to end.
fn run_case(dir: &Path) -> bool {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let mut req = parse_request(&read(dir, "request.txt").expect("request.txt"));
    let ctx = context(dir, &req);
    let opts = Options {
        normalize_path: ctx.normalize,
        encoding: ctx.encoding,
    };
    // Sign as the suite does: set X-Amz-Date, then the token and content hash if asked.
    req.headers.retain(|(n, _)| n != "x-amz-date");
    req.headers
        .push(("x-amz-date".into(), ctx.amz_date.clone()));
    if let (Some(t), false) = (&ctx.token, ctx.omit_token) {
        req.headers.push(("x-amz-security-token".into(), t.clone()));
    }
    let body_hash = hex::encode(Sha256::digest(&req.body));
    if ctx.sign_body {
        req.headers
            .push(("x-amz-content-sha256".into(), body_hash.clone()));
    }
    let mut signed: Vec<String> = req.headers.iter().map(|(n, _)| n.clone()).collect();
    signed.sort();
    signed.dedup();
    let request = Request {
        method: &req.method,
        raw_path: &req.path,
        raw_query: &req.query,
        headers: &req.headers,
    };
    let creq =
        sigv4::canonical_request(&request, &signed, &body_hash, opts).expect("canonical request");
    let expected = read(dir, "header-canonical-request.txt").expect("header-canonical-request.txt");
    assert_eq!(creq, trim_end(&expected), "{name}: canonical request");

    let scope = format!(
        "{}/{}/{}/aws4_request",
        &ctx.amz_date[..8],
        ctx.region,
        ctx.service
    );
    let sts = sigv4::string_to_sign(&ctx.amz_date, &scope, &creq);
    if let Some(expected) = read(dir, "header-string-to-sign.txt") {
        assert_eq!(sts, trim_end(&expected), "{name}: string to sign");
    }
    let key = sigv4::signing_key(&ctx.secret, &ctx.amz_date[..8], &ctx.region, &ctx.service);
    let sig = sigv4::signature(&key, &sts);
    let Some(expected) = read(dir, "header-signature.txt") else {
        return false;
    };
    assert_eq!(sig, expected.trim(), "{name}: signature");

    // The verifier on the suite's signed request, as the emulator sees a request.
    let Some(signed_text) = read(dir, "header-signed-request.txt") else {
        return false;
    };
    let signed_req = parse_request(&signed_text);
    let auth_value = &signed_req
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .expect("authorization")
        .1;
    let mut auth = sigv4::parse_authorization(auth_value).expect("parse Authorization");
    assert_eq!(auth.access_key_id, ctx.access_key_id, "{name}: key id");
    let request = Request {
        method: &signed_req.method,
        raw_path: &signed_req.path,
        raw_query: &signed_req.query,
        headers: &signed_req.headers,
    };
    let verified = sigv4::verify(
        &request,
        &auth,
        &ctx.secret,
        &ctx.amz_date,
        &body_hash,
        opts,
    );
    assert!(verified.is_ok(), "{name}: verify: {:?}", verified.err());
    auth.signature = format!("{:064x}", 1);
    assert!(
        sigv4::verify(
            &request,
            &auth,
            &ctx.secret,
            &ctx.amz_date,
            &body_hash,
            opts
        )
        .is_err(),
        "{name}: a wrong signature must not verify"
    );
    assert!(
        sigv4::verify(
            &request,
            &auth,
            "not-the-secret",
            &ctx.amz_date,
            &body_hash,
            opts
        )
        .is_err(),
        "{name}: a wrong secret must not verify"
    );
    true
}

#[test]
fn every_sigv4_suite_case() {
    let dir = vectors_dir();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read vectors dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("request.txt").is_file())
        .collect();
    cases.sort();
    let (mut ran, mut verified) = (0, 0);
    for case in &cases {
        verified += usize::from(run_case(case));
        ran += 1;
    }
    println!("ran {ran} SigV4 suite cases, {verified} signed requests verified end to end");
    assert!(
        ran >= 30,
        "only {ran} SigV4 cases found in {}",
        dir.display()
    );
    assert!(verified >= 30, "only {verified} signed requests verified");
}
