//! Integration tests: the real proxy, on port 0, against the S3 Express emulator.

#[allow(dead_code)]
mod harness;

mod curl;
mod errors;
mod roundtrip;
mod sessions;
mod tunnel;
mod clients;
#[allow(dead_code)]
mod process;
