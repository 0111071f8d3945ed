//! End-to-end tests of the emulator: one test binary, one module per feature.

mod ca_dir;
mod checksums;
mod directory;
mod encryption;
mod faults;
mod general_purpose;
mod requests_log;
mod rotation;
mod sigv4_s3;
mod support;
