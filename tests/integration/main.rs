//! Integration tests: the real proxy, on port 0, against the S3 Express emulator.

mod harness;

mod bounds;
mod bridges;
mod budget;
mod checksums;
mod clients;
mod clients_more;
mod content_md5;
mod content_md5_others;
mod curl;
mod egress;
mod errors;
mod general;
mod http10;
mod identities;
mod keepalive;
mod layout;
mod legacy;
mod limits;
mod listing;
mod operate;
mod operations;
mod process;
mod redaction;
mod roundtrip;
mod route_props;
mod scripted;
mod session_clock;
mod sessions;
mod sse;
mod steering;
mod streaming;
mod tunnel;
mod uploads;
mod workers;
