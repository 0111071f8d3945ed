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

#[test]
fn the_credential_endpoints_the_environment_names_are_hosts() {
    let variables = ProxyVariables {
        container_credentials_full_uri: Some("http://127.0.0.1:8080/creds?x=1".into()),
        ec2_metadata_service_endpoint: Some("http://[fd00:ec2::254]/".into()),
        ..ProxyVariables::default()
    };
    assert_eq!(
        variables.credential_hosts(),
        vec!["127.0.0.1".to_owned(), "[fd00:ec2::254]".to_owned()]
    );
    let broken = ProxyVariables {
        container_credentials_full_uri: Some("not a uri".into()),
        ..ProxyVariables::default()
    };
    assert!(broken.credential_hosts().is_empty());
}

#[test]
fn the_egress_proxy_flag_wins_over_the_variables_and_none_turns_them_off() {
    let creds = || {
        SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AK", "SK", None, None, "t",
        ))
    };
    let variables = ProxyVariables {
        https_proxy: Some(ProxyUrl("http://env-proxy:3128".into())),
        https_proxy_lowercase: Some(ProxyUrl("http://lower-proxy:3128".into())),
        no_proxy: Some(".internal.example".into()),
        no_proxy_lowercase: Some("ignored.example".into()),
        ..ProxyVariables::default()
    };
    let egress = |extra: &[&str], variables: &ProxyVariables| {
        let mut argv = vec!["s3x-proxy", "--ca-dir", "/tmp/x"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).unwrap();
        Config::from_args(&cli.args, creds())
            .and_then(|c| c.with_proxy_variables(variables, &cli.args))
            .map(|c| c.upstream.egress)
    };
    let from_env = egress(&[], &variables).unwrap().unwrap();
    assert_eq!(from_env.source, "HTTPS_PROXY");
    assert_eq!(from_env.proxy.to_string(), "http://env-proxy:3128");
    assert!(from_env.no_proxy.covers("s3.internal.example", 443));
    assert!(!from_env.no_proxy.covers("ignored.example", 443));
    let lower = ProxyVariables {
        https_proxy: Some(ProxyUrl(String::new())),
        no_proxy: None,
        ..variables.clone()
    };
    let from_lower = egress(&[], &lower).unwrap().unwrap();
    assert_eq!(from_lower.source, "https_proxy");
    assert!(from_lower.no_proxy.covers("ignored.example", 443));

    let flag = egress(
        &["--upstream-proxy", "http://u:p@flag-proxy:8080"],
        &variables,
    );
    let flag = flag.unwrap().unwrap();
    assert_eq!(flag.source, "--upstream-proxy");
    assert_eq!(flag.proxy.to_string(), "http://[redacted]@flag-proxy:8080");
    assert!(
        flag.no_proxy.covers("s3.internal.example", 443),
        "NO_PROXY applies to the flag too"
    );
    for off in ["none", "NONE", ""] {
        assert_eq!(
            egress(&["--upstream-proxy", off], &variables).unwrap(),
            None
        );
    }
    assert_eq!(egress(&[], &ProxyVariables::default()).unwrap(), None);
    // Without `with_proxy_variables` (tests build Config so), the environment plays no part.
    let cli = Cli::try_parse_from(["s3x-proxy", "--ca-dir", "/tmp/x"]).unwrap();
    assert_eq!(
        Config::from_args(&cli.args, creds())
            .unwrap()
            .upstream
            .egress,
        None
    );
}

#[test]
fn an_unusable_egress_proxy_stops_start_up_without_echoing_its_url() {
    let cli = Cli::try_parse_from([
        "s3x-proxy",
        "--ca-dir",
        "/tmp/x",
        "--upstream-proxy",
        "socks5://user:s3cret@proxy:1080",
    ])
    .unwrap();
    let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
        "AK", "SK", None, None, "t",
    ));
    let debug = format!("{:?}", cli.args);
    assert!(
        !debug.contains("s3cret") && debug.contains("[redacted]@proxy:1080"),
        "{debug}"
    );
    let error = Config::from_args(&cli.args, creds).unwrap_err().to_string();
    assert_eq!(
        error,
        "--upstream-proxy: socks5:// egress proxies are not supported; use an http:// or https:// proxy"
    );
    let variables = ProxyVariables {
        https_proxy: Some(ProxyUrl("http://user:s3cret@".into())),
        ..ProxyVariables::default()
    };
    let debug = format!("{variables:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[test]
fn the_proxy_is_never_its_own_egress_proxy() {
    let creds = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
        "AK", "SK", None, None, "t",
    ));
    // What `eval "$(s3x-proxy env)"` leaves in the shell that then starts the proxy.
    let variables = ProxyVariables {
        https_proxy: Some(ProxyUrl("http://127.0.0.1:8080".into())),
        ..ProxyVariables::default()
    };
    let cli = Cli::try_parse_from(["s3x-proxy", "--ca-dir", "/tmp/x"]).unwrap();
    let config = Config::from_args(&cli.args, creds.clone()).unwrap();
    let config = config.with_proxy_variables(&variables, &cli.args).unwrap();
    assert_eq!(config.upstream.egress, None);
    let cli = Cli::try_parse_from([
        "s3x-proxy",
        "--ca-dir",
        "/tmp/x",
        "--listen",
        "0.0.0.0:3128",
    ])
    .unwrap();
    let config = Config::from_args(&cli.args, creds.clone()).unwrap();
    let config = config.with_proxy_variables(&variables, &cli.args).unwrap();
    assert!(
        config.upstream.egress.is_some(),
        "another port is another proxy"
    );
    for url in [
        "http://localhost:3128",
        "http://[::1]:3128",
        "http://0.0.0.0:3128",
    ] {
        let argv = [
            "s3x-proxy",
            "--listen",
            "0.0.0.0:3128",
            "--upstream-proxy",
            url,
        ];
        let cli = Cli::try_parse_from(argv).unwrap();
        let error = Config::from_args(&cli.args, creds.clone()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--upstream-proxy: it is this proxy's own listener"
        );
    }
}
