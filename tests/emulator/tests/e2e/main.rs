//! End-to-end tests of the emulator: one test binary, one module per feature.

mod ca_dir;
mod checksums;
mod client;
mod directory;
mod encryption;
mod express;
mod faults;
mod general_purpose;
mod gp_regions;
mod header_case;
mod listing_order;
mod requests_log;
mod rotation;
mod sessions;
mod sigv4_s3;
mod support;
