//! The `s3x-proxy` binary: parse flags, set up logging, bind, and call [`s3x_proxy::run`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use s3x_proxy::config::{Cli, Command, Config, ProxyVariables};
use s3x_proxy::{serve::ca::CertificateAuthority, Listeners};
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    // Held until exit: dropping it flushes the log lines still queued.
    let _log_writer = s3x_proxy::logging::init(cli.args.log_format);
    // With worker threads (the default), this runtime only accepts connections, serves the
    // admin port and runs timers: one thread is plenty.
    let runtime = match s3x_proxy::config::workers(&cli.args) {
        0 => tokio::runtime::Runtime::new(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => return fail(e.into()),
    };
    match runtime.block_on(start(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(error: BoxError) -> ExitCode {
    eprintln!("s3x-proxy: {error}");
    ExitCode::FAILURE
}

async fn start(cli: Cli) -> Result<(), BoxError> {
    let ca_dir = s3x_proxy::config::ca_dir(&cli.args)?;
    match cli.command {
        Some(Command::Ca) => {
            let ca = CertificateAuthority::load_or_create(&ca_dir).await?;
            println!("{}", ca.cert_path().display());
            return Ok(());
        }
        Some(Command::Env) => {
            let ca = CertificateAuthority::load_or_create(&ca_dir).await?;
            print!(
                "{}",
                s3x_proxy::config::env_lines(&cli.args, ca.cert_path())
            );
            return Ok(());
        }
        None => {}
    }
    let aws_region = aws_region().await;
    let variables = ProxyVariables::from_env()?;
    // IMDS and the container endpoints are reached directly, never through a proxy.
    let http = s3x_proxy::session::credential_egress::CredentialsHttpClient::new(
        variables.credential_hosts(),
    );
    let mut chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .configure(aws_config::provider_config::ProviderConfig::default().with_http_client(http));
    if let Some(region) = cli.args.region.clone().or(aws_region.clone()) {
        // The chain needs a region (for STS); given one, it never asks IMDS for it.
        chain = chain.region(aws_config::Region::new(region));
    }
    let chain = chain.build().await;
    let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(chain);
    let config = Config::from_args(&cli.args, credentials)?
        .with_aws_region(aws_region.as_deref(), &cli.args)
        .with_proxy_variables(&variables, &cli.args)?;
    let listeners = Listeners {
        proxy: bind(cli.args.listen).await?,
        tls: match cli.args.tls_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        },
        admin: Some(bind(cli.args.admin_listen).await?),
    };
    s3x_proxy::run(config, listeners, shutdown_signal()).await?;
    Ok(())
}

/// The region of the AWS configuration (`AWS_REGION`, `AWS_DEFAULT_REGION`, the profile), never
/// asking IMDS.
async fn aws_region() -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    let chain = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::ProfileFileRegionProvider::new());
    chain.region().await.map(|r| r.to_string())
}

async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, BoxError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}").into())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return ctrl_c.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or_default();
}
