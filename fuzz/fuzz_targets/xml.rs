//! The XML parsers (`parse_create_session`, `parse_error`) on any text S3, or something posing
//! as S3, might send; and the bodies the proxy writes (`error_body`, `create_session_body`)
//! read back to the same strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3x_proxy::xml::{create_session_body, error_body, parse_create_session, parse_error};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let session = parse_create_session(text);
    let error = parse_error(text);
    if let Ok(c) = &session {
        // Debug output shows the key id and expiry only, never the secret or the token.
        let expected = format!(
            "SessionCredentialsXml {{ access_key_id: {:?}, expiration: {:?}, .. }}",
            c.access_key_id, c.expiration
        );
        assert_eq!(format!("{c:?}"), expected);
    }
    if error.is_ok() {
        assert!(text.contains("Code"), "{text:?}: a code from nowhere");
    }

    // Round trips: fields separated by '|'. XML normalises line ends, so '\r' is left out.
    if text.contains('\r') {
        return;
    }
    let fields: Vec<&str> = text.split('|').collect();
    if let [code, message, request_id] = fields[..] {
        let body = error_body(code, message, request_id);
        match parse_error(&body) {
            Ok(e) => {
                assert_eq!(e.code, code, "{body:?}");
                assert_eq!(e.message, message, "{body:?}");
            }
            Err(e) => panic!("{body:?}: {e}"),
        }
    }
    if let [key, secret, token, expiration] = fields[..] {
        let body = create_session_body(key, secret, token, expiration);
        match parse_create_session(&body) {
            Ok(c) => {
                assert_eq!(
                    (
                        c.access_key_id.as_str(),
                        c.secret_access_key.as_str(),
                        c.session_token.as_str(),
                        c.expiration.as_str()
                    ),
                    (key, secret, token, expiration),
                    "{body:?}"
                );
            }
            Err(e) => panic!("{body:?}: {e}"),
        }
    }
});
