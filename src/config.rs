//! Config: command-line flags and `S3X_PROXY_*` variables, validated into a [`Config`].
//! This is the only module that reads the environment (through clap).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use clap::{Parser, Subcommand};

pub use crate::logging::LogFormat;
use crate::policy::SessionMode;
use crate::route::endpoint::Flavor;
use crate::route::names::{Region, RegionResolver, ZoneId};
use crate::route::RouteSettings;
use crate::serve::connect::AllowRule;
use crate::sign::checksum::{ChecksumFlag, Computed};
use crate::upstream::egress_proxy::{redact_userinfo, Egress, EgressProxy, NoProxy};
use crate::upstream::{ResolveOverrides, UpstreamSettings};

/// A signing forward proxy that lets unmodified HTTP clients use S3 Express One Zone
/// directory buckets.
#[derive(Parser, Debug)]
#[command(name = "s3x-proxy", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a subcommand the proxy runs.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Proxy options.
    #[command(flatten)]
    pub args: Args,
}

/// Subcommands.
#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Print the CA certificate's path, creating the CA if needed.
    Ca,
    /// Print the export lines a client shell needs (eval "$(s3x-proxy env)").
    Env,
}

/// The proxy's options. Each has an `S3X_PROXY_*` environment variable; lists in variables are
/// comma-separated.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Proxy listener: forward-proxy requests, CONNECT (intercepted for S3 hosts), and
    /// endpoint-mode requests (virtual-host or path-style).
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// The same proxy over TLS (HTTP/1.1 and h2).
    #[arg(long, global = true, env = "S3X_PROXY_TLS_LISTEN")]
    pub tls_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) for --tls-listen; without it, one is minted by the local CA.
    #[arg(long, global = true, env = "S3X_PROXY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, global = true, env = "S3X_PROXY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Names (DNS or IP) in the certificate minted for --tls-listen.
    #[arg(long, global = true, env = "S3X_PROXY_TLS_NAME", value_delimiter = ',', default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub tls_name: Vec<String>,
    /// Admin listener: /metrics, /healthz, /readyz.
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_ADMIN_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    pub admin_listen: SocketAddr,
    /// Directory of the local CA (ca.pem, ca-key.pem), created on first run
    /// [default: the per-user data directory, e.g. ~/.local/share/s3x-proxy].
    #[arg(long, global = true, env = "S3X_PROXY_CA_DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Region for zones the built-in table and --zone-region do not know.
    #[arg(long, global = true, env = "S3X_PROXY_REGION")]
    pub region: Option<String>,
    /// Region of a zone, ZONE=REGION (repeatable); overrides the built-in table.
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_ZONE_REGION",
        value_delimiter = ','
    )]
    pub zone_region: Vec<String>,
    /// Which session each request uses.
    #[arg(long, global = true, env = "S3X_PROXY_SESSION_MODE", value_enum, default_value_t = SessionMode::PerRequest)]
    pub session_mode: SessionMode,
    /// Send upstream connections for HOST to IP:PORT, keeping Host and SNI; HOST may be
    /// `*.suffix` (repeatable; an exact host beats a wildcard, a longer suffix a shorter one).
    #[arg(long, global = true, env = "S3X_PROXY_RESOLVE", value_delimiter = ',')]
    pub resolve: Vec<String>,
    /// Extra trust roots (PEM) for upstream TLS (repeatable); AWS_CA_BUNDLE is honoured too.
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_UPSTREAM_CA",
        value_delimiter = ','
    )]
    pub upstream_ca: Vec<PathBuf>,
    /// A CA bundle (PEM) trusted for upstream TLS in addition to the webpki roots, as the AWS
    /// CLI reads it.
    #[arg(long, global = true, env = "AWS_CA_BUNDLE")]
    pub aws_ca_bundle: Option<PathBuf>,
    /// Egress proxy for the proxy's own connections to S3, http://[USER:PASS@]HOST:PORT
    /// (https:// for TLS to the proxy), reached with CONNECT; `none` or empty ignores
    /// HTTPS_PROXY [default: HTTPS_PROXY or https_proxy; NO_PROXY is honoured].
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_UPSTREAM_PROXY",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub upstream_proxy: Option<ProxyUrl>,
    /// What a CONNECT may open a plain, uninspected tunnel to (repeatable): HOST, *.SUFFIX or
    /// an IP, with :PORT or :* (443 when none is given), e.g. sts.us-west-2.amazonaws.com.
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_ALLOW_CONNECT",
        value_delimiter = ','
    )]
    pub allow_connect: Vec<String>,
    /// Add a `bucket` label to s3x_proxy_requests_total (unbounded with many buckets).
    #[arg(long, global = true, env = "S3X_PROXY_METRICS_BUCKET_LABEL")]
    pub metrics_bucket_label: bool,
    /// Log format.
    #[arg(long, global = true, env = "S3X_PROXY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Include bucket and key in access log lines.
    #[arg(long, global = true, env = "S3X_PROXY_LOG_OBJECT_NAMES", default_value_t = true, action = clap::ArgAction::Set)]
    pub log_object_names: bool,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT (e.g. 25s, 500ms).
    #[arg(long, global = true, env = "S3X_PROXY_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Deadline for connecting to S3.
    #[arg(long, global = true, env = "S3X_PROXY_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Deadline for S3's response headers once a request is sent.
    #[arg(long, global = true, env = "S3X_PROXY_RESPONSE_HEADER_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub response_header_timeout: Duration,
    /// Most idle upstream connections kept per S3 host in each pool; there is one pool per
    /// worker (--workers), so up to N × workers in all. A connection that becomes idle past it
    /// is closed; 0 keeps none.
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_UPSTREAM_MAX_IDLE_PER_HOST",
        default_value_t = DEFAULT_UPSTREAM_MAX_IDLE_PER_HOST
    )]
    pub upstream_max_idle_per_host: usize,
    /// How long an idle upstream connection is kept before it is closed (it closes between
    /// this and twice this; more than zero, at most 24h).
    #[arg(long, global = true, env = "S3X_PROXY_UPSTREAM_IDLE_TIMEOUT", default_value = "15s", value_parser = parse_idle_timeout)]
    pub upstream_idle_timeout: Duration,
    /// Close a client connection (plain, TLS, h2, or a CONNECT tunnel) with no request in
    /// flight and no bytes moving for this long; a body that stalls this long is cut.
    #[arg(long, global = true, env = "S3X_PROXY_CLIENT_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_idle_timeout)]
    pub client_idle_timeout: Duration,
    /// An HTTP/1.1 client connection with no request in flight and no bytes moving for this long
    /// gives its HTTP buffers and state back (about 20 KiB) until its next request arrives; `0s`
    /// keeps them. Shorter saves memory on connections that idle briefly, at some CPU on each
    /// request that wakes one. With more than 256 client connections open, at most 10ms.
    #[arg(long, global = true, env = "S3X_PROXY_CLIENT_REST_AFTER", default_value = "1s", value_parser = parse_duration)]
    pub client_rest_after: Duration,
    /// Most client connections open at once, CONNECT tunnels included; past it the proxy stops
    /// accepting until one closes.
    #[arg(long, global = true, env = "S3X_PROXY_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Worker threads, each a single-threaded runtime serving its share of the client
    /// connections with its own upstream connection pool (default: the CPUs this process may
    /// use). 0 serves everything on one multi-threaded, work-stealing runtime instead.
    #[arg(long, global = true, env = "S3X_PROXY_WORKERS")]
    pub workers: Option<usize>,
    /// Most sessions kept in the cache.
    #[arg(
        long,
        global = true,
        env = "S3X_PROXY_SESSION_CACHE_SIZE",
        default_value_t = 10_000
    )]
    pub session_cache_size: u64,
    /// The most bytes of request bodies held in memory at once (bodies of unknown length, small
    /// bodies kept for a retry); a request that would pass it gets 503 SlowDown.
    #[arg(long, global = true, env = "S3X_PROXY_MAX_BUFFERED_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub max_buffered_bytes: u64,
    /// Client identities (TOML): who may use the proxy (Proxy-Authorization: Basic in forward
    /// mode and CONNECT, the client's own SigV4 in endpoint mode) and which buckets each may
    /// touch, read-only or read-write. SIGHUP reloads it. Off: anyone who reaches the port.
    #[arg(long, global = true, env = "S3X_PROXY_ACCESS_FILE")]
    pub access_file: Option<PathBuf>,
    /// Serve general-purpose S3 buckets too (signed with IAM credentials, service s3);
    /// `false` refuses their hosts with 403.
    #[arg(long, global = true, env = "S3X_PROXY_GENERAL_PURPOSE", default_value_t = true, action = clap::ArgAction::Set)]
    pub general_purpose: bool,
    /// Endpoint mode sends to FIPS endpoints (`s3express-fips-ZONE`, `s3-fips`).
    #[arg(long, global = true, env = "S3X_PROXY_FIPS")]
    pub fips: bool,
    /// Endpoint mode sends to dual-stack (IPv4 and IPv6) endpoints.
    #[arg(long, global = true, env = "S3X_PROXY_DUALSTACK")]
    pub dualstack: bool,
    /// Host names clients reach the proxy by in endpoint mode (repeatable): `BUCKET.NAME` is
    /// then a virtual-hosted request for a general-purpose bucket. Directory bucket names are
    /// recognised as the first label of any host.
    #[arg(long, global = true, env = "S3X_PROXY_ENDPOINT_HOST", value_delimiter = ',', default_values_t = ["localhost".to_string()])]
    pub endpoint_host: Vec<String>,
    /// A checksum the proxy computes while streaming and adds to PutObject bodies that carry
    /// none of their own, so S3 verifies what it stores (`off`: such bodies rest on TLS alone).
    #[arg(long, global = true, env = "S3X_PROXY_CHECKSUM", value_enum, default_value_t = ChecksumFlag::Off)]
    pub checksum: ChecksumFlag,
}

/// A proxy URL as given, which may carry a password: `Debug` redacts its userinfo, and it is
/// parsed (into an [`EgressProxy`]) only by [`Config`], whose errors never repeat it.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub String);

impl From<String> for ProxyUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProxyUrl")
            .field(&redact_userinfo(&self.0))
            .finish()
    }
}

/// The standard proxy variables, read through clap like every other variable, but kept out of
/// [`Args`] (and so out of [`Config::from_args`]): tests build `Args` from argv and must not
/// pick up the machine's proxy. `main` reads them with [`ProxyVariables::from_env`] and applies
/// them with [`Config::with_proxy_variables`]. Each name wins over its lowercase twin, as in
/// aws-config's own HTTP client.
#[derive(Parser, Debug, Clone, Default)]
#[command(name = "s3x-proxy", no_binary_name = true)]
pub struct ProxyVariables {
    /// `HTTPS_PROXY`.
    #[arg(long, env = "HTTPS_PROXY", hide_env_values = true)]
    pub https_proxy: Option<ProxyUrl>,
    /// `https_proxy`.
    #[arg(long, env = "https_proxy", hide_env_values = true)]
    pub https_proxy_lowercase: Option<ProxyUrl>,
    /// `NO_PROXY`.
    #[arg(long, env = "NO_PROXY")]
    pub no_proxy: Option<String>,
    /// `no_proxy`.
    #[arg(long, env = "no_proxy")]
    pub no_proxy_lowercase: Option<String>,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`: the container credentials endpoint; the credential
    /// chain reaches its host directly, never through a proxy.
    #[arg(
        long,
        env = "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        hide_env_values = true
    )]
    pub container_credentials_full_uri: Option<String>,
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`: an IMDS endpoint override, likewise reached directly.
    #[arg(
        long,
        env = "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        hide_env_values = true
    )]
    pub ec2_metadata_service_endpoint: Option<String>,
}

impl ProxyVariables {
    /// Reads the variables from the environment (and nothing from the command line).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::try_parse_from(std::iter::empty::<String>()).map_err(|_| ConfigError::EgressProxy {
            origin: "HTTPS_PROXY, https_proxy, NO_PROXY, no_proxy, AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_EC2_METADATA_SERVICE_ENDPOINT",
            reason: "not valid UTF-8".into(),
        })
    }

    /// The hosts of the credential endpoints the environment names (container full URI, IMDS
    /// override), which the credential chain reaches directly (`credential_egress`).
    pub fn credential_hosts(&self) -> Vec<String> {
        [
            &self.container_credentials_full_uri,
            &self.ec2_metadata_service_endpoint,
        ]
        .into_iter()
        .flatten()
        .filter_map(|uri| {
            uri.trim()
                .parse::<http::Uri>()
                .ok()?
                .host()
                .map(str::to_owned)
        })
        .collect()
    }

    /// The egress proxy URL and the variable it came from: the first one set and not empty.
    fn https(&self) -> Option<(&'static str, &str)> {
        [
            ("HTTPS_PROXY", &self.https_proxy),
            ("https_proxy", &self.https_proxy_lowercase),
        ]
        .into_iter()
        .find_map(|(name, url)| {
            let url = url.as_ref()?.0.as_str();
            (!url.trim().is_empty()).then_some((name, url))
        })
    }

    /// The `NO_PROXY` list: the first variable set and not empty.
    fn no(&self) -> &str {
        [&self.no_proxy, &self.no_proxy_lowercase]
            .into_iter()
            .flatten()
            .map(|list| list.as_str())
            .find(|list| !list.trim().is_empty())
            .unwrap_or_default()
    }
}

/// Parses a duration such as `25s`, `500ms`, `2m` or `1h 30m` (humantime), or a bare number
/// of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 500ms, 25s, 5m)"))
}

/// [`parse_duration`], for an idle timeout: more than zero, at most a day.
fn parse_idle_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be more than zero")),
        d if d > MAX_IDLE_TIMEOUT => Err(format!("{s:?}: must be at most 24h")),
        d => Ok(d),
    }
}

/// The longest `--client-idle-timeout` and `--upstream-idle-timeout`.
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// `--upstream-max-idle-per-host`: one worker alone can serve `perf/run`'s highest
/// concurrency (256 connections) without closing and reopening upstream connections.
pub const DEFAULT_UPSTREAM_MAX_IDLE_PER_HOST: usize = 256;

/// Parses a size such as `65536`, `64KiB`, `16MiB` or `1GiB` (bytesize; `KB`/`MB` are powers
/// of ten).
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("{s:?}: {e} (e.g. 65536, 64KiB, 16MiB, 1GiB)"))
}

/// Invalid options.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value is malformed.
    #[error("--{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The egress proxy's URL is unusable. The reason never repeats the URL (it may hold a
    /// password).
    #[error("{origin}: {reason}")]
    EgressProxy {
        /// `--upstream-proxy`, or the variable the URL came from.
        origin: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No per-user data directory is known.
    #[error("no per-user data directory; pass --ca-dir")]
    NoDataDir,
}

/// Where the --tls-listen certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// `--tls-cert` and `--tls-key`.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Minted by the local CA for these names.
    Minted(Vec<String>),
}

/// Validated configuration for [`crate::run`].
#[derive(Clone, Debug)]
pub struct Config {
    /// CA directory.
    pub ca_dir: PathBuf,
    /// Certificate for the TLS listener.
    pub tls: TlsSource,
    /// Routing: zone → region, endpoint mode's flavor and host names, general purpose.
    pub route: RouteSettings,
    /// Session mode.
    pub session_mode: SessionMode,
    /// Upstream client settings.
    pub upstream: UpstreamSettings,
    /// What CONNECT may tunnel to without interception.
    pub allow_connect: Vec<AllowRule>,
    /// Per-bucket metric label.
    pub metrics_bucket_label: bool,
    /// Bucket and key in access logs.
    pub log_object_names: bool,
    /// Drain deadline.
    pub shutdown_grace: Duration,
    /// Session cache capacity.
    pub session_cache_size: u64,
    /// `--max-buffered-bytes`.
    pub max_buffered_bytes: u64,
    /// `--access-file`.
    pub access_file: Option<PathBuf>,
    /// How long a client connection or body may sit idle (`--client-idle-timeout`).
    pub client_idle_timeout: Duration,
    /// `--client-rest-after`, or `None` for `0s`.
    pub client_rest_after: Option<Duration>,
    /// Most client connections open at once (`--max-connections`).
    pub max_connections: usize,
    /// Worker threads (`--workers`; 0: none, serve on the caller's runtime).
    pub workers: usize,
    /// Where IAM credentials come from.
    pub credentials: SharedCredentialsProvider,
    /// The checksum added to uploads that carry none (`--checksum`).
    pub checksum: Option<Computed>,
    /// The bounds of the listing bridges (no flag: the defaults; tests lower them).
    pub listing: crate::send::listing::ListingSettings,
}

impl Config {
    /// Validates `args`; the credentials provider is given (the default chain in `main`).
    pub fn from_args(
        args: &Args,
        credentials: SharedCredentialsProvider,
    ) -> Result<Self, ConfigError> {
        let mut extra_roots = args.upstream_ca.clone();
        extra_roots.extend(
            args.aws_ca_bundle
                .iter()
                .filter(|p| !p.as_os_str().is_empty())
                .cloned(),
        );
        Ok(Self {
            ca_dir: ca_dir(args)?,
            tls: match (&args.tls_cert, &args.tls_key) {
                (Some(cert), Some(key)) => TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                },
                _ => TlsSource::Minted(args.tls_name.clone()),
            },
            route: route_settings(args)?,
            session_mode: args.session_mode,
            upstream: UpstreamSettings {
                extra_roots,
                resolve: resolve(&args.resolve)?,
                connect_timeout: args.connect_timeout,
                egress: upstream_proxy_flag(args)?,
                header_timeout: args.response_header_timeout,
                idle_timeout: args.upstream_idle_timeout,
                max_idle_per_host: args.upstream_max_idle_per_host,
                pools: workers(args) + 1,
            },
            allow_connect: args
                .allow_connect
                .iter()
                .map(|entry| AllowRule::parse(entry))
                .collect::<Result<_, _>>()
                .map_err(|reason| ConfigError::Invalid {
                    flag: "allow-connect",
                    reason,
                })?,
            metrics_bucket_label: args.metrics_bucket_label,
            log_object_names: args.log_object_names,
            shutdown_grace: args.shutdown_grace,
            session_cache_size: args.session_cache_size,
            max_buffered_bytes: args.max_buffered_bytes,
            access_file: args.access_file.clone(),
            client_idle_timeout: args.client_idle_timeout,
            client_rest_after: Some(args.client_rest_after).filter(|d| !d.is_zero()),
            max_connections: args.max_connections as usize,
            workers: workers(args),
            credentials,
            checksum: args.checksum.computed(),
            listing: crate::send::listing::ListingSettings::default(),
        })
    }
}

/// `--workers`, or one per CPU.
pub fn workers(args: &Args) -> usize {
    args.workers.unwrap_or_else(crate::workers::default_count)
}

/// The egress proxy `--upstream-proxy` names (not `none` or empty), without `NO_PROXY` (see
/// [`Config::with_proxy_variables`]).
fn upstream_proxy_flag(args: &Args) -> Result<Option<Egress>, ConfigError> {
    match args.upstream_proxy.as_ref().map(|url| url.0.trim()) {
        None | Some("") => Ok(None),
        Some(none) if none.eq_ignore_ascii_case("none") => Ok(None),
        Some(url) => {
            let egress = egress("--upstream-proxy", url)?;
            match listeners(args).any(|addr| egress.proxy.is_listener(addr)) {
                true => Err(ConfigError::EgressProxy {
                    origin: "--upstream-proxy",
                    reason: "it is this proxy's own listener".into(),
                }),
                false => Ok(Some(egress)),
            }
        }
    }
}

fn listeners(args: &Args) -> impl Iterator<Item = SocketAddr> {
    std::iter::once(args.listen).chain(args.tls_listen)
}

fn egress(origin: &'static str, url: &str) -> Result<Egress, ConfigError> {
    let proxy =
        EgressProxy::parse(url).map_err(|reason| ConfigError::EgressProxy { origin, reason })?;
    Ok(Egress {
        proxy,
        no_proxy: NoProxy::default(),
        source: origin,
    })
}

impl Config {
    /// Applies the standard proxy variables: `HTTPS_PROXY` (else `https_proxy`) when
    /// `--upstream-proxy` was not given at all, and `NO_PROXY` (else `no_proxy`) to whichever
    /// egress proxy is in effect, as curl does. A variable that names this proxy's own
    /// listener is ignored, with a warning.
    pub fn with_proxy_variables(
        mut self,
        variables: &ProxyVariables,
        args: &Args,
    ) -> Result<Self, ConfigError> {
        if args.upstream_proxy.is_none() {
            if let Some((origin, url)) = variables.https() {
                let egress = egress(origin, url)?;
                if listeners(args).any(|addr| egress.proxy.is_listener(addr)) {
                    // A shell that ran `eval "$(s3x-proxy env)"` and then started the proxy.
                    tracing::warn!(
                        variable = origin,
                        "ignoring the egress proxy variable: it is this proxy's own listener"
                    );
                } else {
                    self.upstream.egress = Some(egress);
                }
            }
        }
        if let Some(egress) = &mut self.upstream.egress {
            egress.no_proxy = NoProxy::parse(variables.no());
        }
        Ok(self)
    }
}

/// The CA directory: --ca-dir, or `s3x-proxy` in the per-user data directory.
pub fn ca_dir(args: &Args) -> Result<PathBuf, ConfigError> {
    match &args.ca_dir {
        Some(dir) => Ok(dir.clone()),
        None => dirs::data_local_dir()
            .map(|d| d.join("s3x-proxy"))
            .ok_or(ConfigError::NoDataDir),
    }
}

fn route_settings(args: &Args) -> Result<RouteSettings, ConfigError> {
    let regions = regions(args)?;
    let general_region = regions
        .fallback()
        .cloned()
        .unwrap_or_else(|| Region::parse("us-east-1").expect("a valid region"));
    Ok(RouteSettings {
        regions,
        flavor: Flavor {
            fips: args.fips,
            dualstack: args.dualstack,
        },
        endpoint_hosts: args
            .endpoint_host
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
        general_region,
        general_purpose: args.general_purpose,
    })
}

impl Config {
    /// Uses the AWS configuration's region (`AWS_REGION`, the profile) for general-purpose
    /// requests that name none, unless `--region` was given.
    pub fn with_aws_region(mut self, region: Option<&str>, args: &Args) -> Self {
        if args.region.is_none() {
            if let Some(region) = region.and_then(|r| Region::parse(r).ok()) {
                self.route.general_region = region;
            }
        }
        self
    }
}

fn regions(args: &Args) -> Result<RegionResolver, ConfigError> {
    let invalid = |flag, reason: String| ConfigError::Invalid { flag, reason };
    let fallback = args
        .region
        .as_deref()
        .map(Region::parse)
        .transpose()
        .map_err(|e| invalid("region", e.to_string()))?;
    let mut overrides = HashMap::new();
    for entry in &args.zone_region {
        let (zone, region) = entry
            .split_once('=')
            .ok_or_else(|| invalid("zone-region", format!("{entry:?} is not ZONE=REGION")))?;
        let zone = ZoneId::parse(zone)
            .ok_or_else(|| invalid("zone-region", format!("{zone:?} is not a zone id")))?;
        let region = Region::parse(region).map_err(|e| invalid("zone-region", e.to_string()))?;
        overrides.insert(zone.as_str().to_owned(), region);
    }
    Ok(RegionResolver::new(overrides, fallback))
}

fn resolve(entries: &[String]) -> Result<ResolveOverrides, ConfigError> {
    let mut table = Vec::new();
    for entry in entries {
        let invalid = |reason: &str| ConfigError::Invalid {
            flag: "resolve",
            reason: format!("{entry:?}: {reason}"),
        };
        let (host, addr) = entry
            .split_once('=')
            .ok_or_else(|| invalid("expected HOST=IP:PORT"))?;
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| invalid("expected IP:PORT after '='"))?;
        if host.is_empty() {
            return Err(invalid("empty host"));
        }
        table.push((host.to_ascii_lowercase(), addr));
    }
    Ok(ResolveOverrides::new(table))
}

/// The `export` lines `s3x-proxy env` prints for a client shell.
pub fn env_lines(args: &Args, ca_cert: &std::path::Path) -> String {
    let host = match args.listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let proxy = format!("http://{host}:{}", args.listen.port());
    // Instance metadata and container credential endpoints must never go through a proxy.
    let no_proxy =
        "169.254.169.254,169.254.170.2,169.254.170.23,fd00:ec2::23,localhost,127.0.0.1,::1";
    let mut out = String::new();
    for (name, value) in [
        ("HTTPS_PROXY", proxy.as_str()),
        ("https_proxy", proxy.as_str()),
        ("HTTP_PROXY", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("NO_PROXY", no_proxy),
        ("no_proxy", no_proxy),
    ] {
        out.push_str(&format!("export {name}={value}\n"));
    }
    let ca = ca_cert.display().to_string().replace('\'', "'\\''");
    out.push_str(&format!("export AWS_CA_BUNDLE='{ca}'\n"));
    out
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
