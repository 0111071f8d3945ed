//! Integration tests: the real proxy, on port 0, against the S3 Express emulator.

mod harness;

mod bounds;
mod bridges;
mod budget;
mod checksums;
mod clients;
mod clients_more;
mod curl;
mod egress;
mod errors;
mod general;
mod http10;
mod identities;
mod keepalive;
mod layout;
mod limits;
mod operate;
mod operations;
mod process;
mod redaction;
mod regions;
mod roundtrip;
mod route_props;
mod scripted;
mod session_clock;
mod sessions;
mod sse;
mod steering;
mod streaming;
mod tenants;
mod tunnel;
mod uploads;
mod workers;
