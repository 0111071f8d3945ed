//! Runs the S3 Express emulator for manual testing of s3x-proxy:
//!
//! ```text
//! cargo run --example emulator -- [--port 9443] [--ca-file PATH] [--bucket NAME]... [--session-lifetime SECS]
//! ```
//!
//! It prints the address, the CA file, the IAM test credentials and the proxy flags, then
//! serves until Ctrl-C. `S3X_EMULATOR_LOG=1` prints one line per request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use s3x_emulator::{Config, Emulator};

const USAGE: &str =
    "usage: emulator [--port N] [--ca-file PATH] [--bucket NAME]... [--session-lifetime SECS]";

struct Args {
    port: u16,
    ca_file: PathBuf,
    buckets: Vec<String>,
    session_lifetime: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        ca_file: std::env::temp_dir().join("s3x-emulator-ca.pem"),
        buckets: Vec::new(),
        session_lifetime: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--ca-file" => args.ca_file = PathBuf::from(value()?),
            "--bucket" => args.buckets.push(value()?),
            "--session-lifetime" => {
                args.session_lifetime = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--session-lifetime: {e}"))?,
                )
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.buckets.is_empty() {
        args.buckets = vec![
            "demo--usw2-az1--x-s3".into(),
            "demo2--usw2-az2--x-s3".into(),
        ];
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut config = Config {
        buckets: args.buckets.clone(),
        ..Config::default()
    };
    if let Some(secs) = args.session_lifetime {
        config.session_lifetime = Duration::from_secs(secs);
    }
    let (key_id, secret) = (
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
    );
    let emu = match Emulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], args.port))).await
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot start the emulator on 127.0.0.1:{}: {e}", args.port);
            std::process::exit(1);
        }
    };
    if let Err(e) = std::fs::write(&args.ca_file, emu.ca_pem()) {
        eprintln!("cannot write the CA to {}: {e}", args.ca_file.display());
        std::process::exit(1);
    }
    let port = emu.addr().port();
    let ca = args.ca_file.display();
    println!(
        "s3x-emulator listening on https://{} (h2 and http/1.1)",
        emu.addr()
    );
    println!("CA certificate: {ca}");
    println!("directory buckets:");
    for b in &args.buckets {
        println!("  {b}");
    }
    println!();
    println!("IAM test credentials (for the proxy's environment):");
    println!("  export AWS_ACCESS_KEY_ID={key_id}");
    println!("  export AWS_SECRET_ACCESS_KEY={secret}");
    println!("  unset AWS_SESSION_TOKEN AWS_PROFILE");
    println!("  export AWS_REGION=us-west-2");
    println!();
    println!("run the proxy with:");
    println!("  s3x-proxy --resolve '*.amazonaws.com=127.0.0.1:{port}' --upstream-ca {ca} --region us-west-2");
    println!();
    println!("Ctrl-C stops the emulator.");
    let _ = tokio::signal::ctrl_c().await;
    emu.shutdown().await;
}
