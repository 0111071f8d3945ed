//! Flags: parsing, validation, and the values a `Config` gets.

use super::*;
use clap::CommandFactory;

#[test]
fn the_cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn durations_and_sizes_parse() {
    assert_eq!(parse_duration("25s").unwrap(), Duration::from_secs(25));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("-1s").is_err());
    assert_eq!(parse_size("65536").unwrap(), 65536);
    assert_eq!(parse_size("64KiB").unwrap(), 64 * 1024);
    assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
    assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
    assert!(parse_size("lots").is_err());
}

#[test]
fn options_work_after_a_subcommand() {
    let cli = Cli::try_parse_from(["s3x-proxy", "env", "--listen", "127.0.0.1:9999"]).unwrap();
    assert_eq!(cli.command, Some(Command::Env));
    assert_eq!(cli.args.listen.port(), 9999);
}

#[test]
fn flags_are_validated() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["s3x-proxy", "--ca-dir", "/tmp/x"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).unwrap();
        let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AK", "SK", None, None, "t",
        ));
        Config::from_args(&cli.args, creds)
    };
    assert!(parse(&["--zone-region", "usw2-az9=us-west-2"]).is_ok());
    assert!(parse(&["--zone-region", "nonsense"]).is_err());
    assert!(parse(&["--resolve", "*.amazonaws.com=127.0.0.1:8443"]).is_ok());
    assert!(parse(&["--resolve", "*.amazonaws.com=localhost"]).is_err());
    assert!(parse(&["--region", "US WEST"]).is_err());
    let bounds = parse(&["--client-idle-timeout", "300ms", "--max-connections", "3"]).unwrap();
    assert_eq!(bounds.client_idle_timeout, Duration::from_millis(300));
    assert_eq!(bounds.max_connections, 3);
    let defaults = parse(&[]).unwrap();
    assert_eq!(defaults.client_idle_timeout, Duration::from_secs(60));
    assert_eq!(defaults.max_connections, 4096);
}

#[test]
fn bounds_must_be_positive() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["s3x-proxy"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv)
    };
    assert!(parse(&["--client-idle-timeout", "0s"]).is_err());
    assert!(parse(&["--client-idle-timeout", "25h"]).is_err());
    assert!(parse(&["--client-idle-timeout", "24h"]).is_ok());
    assert!(parse(&["--max-connections", "0"]).is_err());
    assert!(parse(&["--max-connections", "1"]).is_ok());
}
