//! Runs the emulator for manual testing on a fixed port with a CA kept across restarts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use s3x_emulator::{CaPem, Config, Emulator, CA_CERT_FILE};

const USAGE: &str = "usage: cargo run --example emulator -- [--port N (default 9443, 0 = random)] [--dir DIR (CA directory)] [--bucket NAME]... [--general-purpose NAME=REGION]... [--session-lifetime SECS]

The CA (ca.pem, ca-key.pem) is kept in DIR and reused at every start, so a proxy that trusts it
keeps working when the emulator restarts. S3X_EMULATOR_LOG=1 prints one line per request.";

const DEFAULT_PORT: u16 = 9443;

struct Args {
    port: u16,
    dir: PathBuf,
    buckets: Vec<String>,
    general_purpose: Vec<(String, String)>,
    session_lifetime: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: DEFAULT_PORT,
        dir: CaPem::default_dir(),
        buckets: Vec::new(),
        general_purpose: Vec::new(),
        session_lifetime: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--dir" => args.dir = PathBuf::from(value()?),
            "--bucket" => args.buckets.push(value()?),
            "--general-purpose" => {
                let v = value()?;
                let (name, region) = v
                    .split_once('=')
                    .ok_or(format!("--general-purpose takes NAME=REGION, not {v:?}"))?;
                args.general_purpose.push((name.into(), region.into()));
            }
            "--session-lifetime" => {
                let secs = value()?;
                let secs = secs
                    .parse()
                    .map_err(|e| format!("--session-lifetime: {e}"))?;
                args.session_lifetime = Some(secs);
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

fn fail(message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let (ca, created) = CaPem::load_or_create(&args.dir)
        .unwrap_or_else(|e| fail(format!("CA directory {}: {e}", args.dir.display())));
    let mut config = Config {
        buckets: args.buckets.clone(),
        general_purpose_buckets: args.general_purpose.clone(),
        ca: Some(ca),
        ..Config::default()
    };
    if let Some(secs) = args.session_lifetime {
        config.session_lifetime = Duration::from_secs(secs);
    }
    let (key_id, secret) = (
        config.access_key_id.clone(),
        config.secret_access_key.clone(),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let emu = Emulator::start_on(config, addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e} (try --port 0)")));
    let port = emu.addr().port();
    let ca_file = args.dir.join(CA_CERT_FILE);
    let ca = ca_file.display();
    println!(
        "s3x-emulator listening on https://{} (h2 and http/1.1)",
        emu.addr()
    );
    println!(
        "CA directory: {} ({})",
        args.dir.display(),
        if created { "new CA" } else { "CA reused" }
    );
    println!("CA certificate: {ca}");
    println!("directory buckets:");
    for b in &args.buckets {
        println!("  {b}");
    }
    if !args.general_purpose.is_empty() {
        println!("general-purpose buckets:");
        for (b, region) in &args.general_purpose {
            println!("  {b} ({region})");
        }
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
