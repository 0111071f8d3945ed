//! Integration tests: the real proxy, on port 0, against the S3 Express emulator.

mod harness;

mod clients;
mod curl;
mod errors;
mod layout;
mod operate;
mod operations;
mod process;
mod roundtrip;
mod route_props;
mod session_clock;
mod sessions;
mod steering;
mod streaming;
mod tunnel;
