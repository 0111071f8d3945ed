//! Integration tests: the real proxy, on port 0, against the S3 Express emulator.

#[allow(dead_code)]
mod harness;

mod clients;
mod clients_more;
mod curl;
mod errors;
mod operate;
mod operations;
#[allow(dead_code)]
mod process;
mod roundtrip;
mod sessions;
mod streaming;
mod tunnel;
