//! Integration tests: the real proxy, on port 0, against the S3 Express emulator.

mod errors;
#[allow(dead_code)]
mod harness;
mod roundtrip;
mod sessions;
