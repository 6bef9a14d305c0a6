//! Configuration: command line and environment (clap) over a TOML file over defaults, loaded
//! once and validated purely into a [`Config`] that the running parts are built from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use spoor_protocol::Limits;

/// `--help` text for what only the TOML file sets.
const CONFIG_FILE_HELP: &str = "\
The command line and SPOOR_* environment variables win over the --config TOML file, which wins
over defaults. Log filter: SPOOR_LOG (e.g. info, spoor_collector=debug). Without --config the
collector runs in dev mode: write key pk_dev for project dev, any origin allowed.

TOML file (unknown fields are errors; example: collector/spoor.example.toml):
  listen, sdk_dir, log_format          as the flags above
  [clickhouse] url, database, user, password, cluster, events_ttl_days
  [spool]      dir; high_water_bytes (1 GiB; above it new batches get 503 + Retry-After);
               segment_bytes (64 MiB)
  [writer]     max_rows (20000), max_bytes (32 MiB), max_wait_ms (1000): when an insert closes;
               retry_initial_ms (100), retry_max_ms (10000): jittered backoff;
               memory_queue_bytes (256 MiB): decoded requests held in memory for the writer
               (past it the writer reads them back from the spool and decodes them again)
  [http]       retry_after_secs (5); shutdown_grace_secs (30): time to drain on SIGTERM
  [limits]     max_body_bytes (1 MiB), max_decompressed_bytes (8 MiB), max_events_per_batch (500),
               max_event_bytes (32 KiB), max_string_bytes (4096, longer is truncated + flagged),
               max_id_bytes (200, longer is rejected)
  [enrich]     ip = anonymize|full|drop; ipv4_prefix (24); ipv6_prefix (48);
               trusted_proxy_hops (0: use the socket peer, not X-Forwarded-For);
               scrub_query_params (token, password, email, …); max_future_secs (3600) and
               max_past_secs (31 days): corrected timestamps outside are clamped + flagged;
               pixel_salt: secret for the cookie-less daily id of pixel hits;
               contact_traits = hash|drop|keep: e-mail and phone numbers in identify traits
               stored as email_sha256 / phone_sha256 (default), left out, or kept as sent
  [[keys]]     key; project; kind = public|secret; origins (public keys; \"*\" = any);
               events_per_second + burst: per-key token bucket (unset = unlimited)";

/// What happens to contact details (e-mail addresses, phone numbers) in `identify` traits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactTraits {
    /// Stored as `email_sha256` / `phone_sha256` (SHA-256 of the normalised value), never
    /// as sent: still a key to join on, no longer an address.
    #[default]
    Hash,
    /// Left out.
    Drop,
    /// Stored as sent.
    Keep,
}

/// What the command line and the environment can set. Everything else lives in the TOML file.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "spoor-collector",
    version,
    about = "Spoor's collector: receives events from the browser SDK and backend sources, \
             enriches them and stores them in ClickHouse. An acknowledged batch is on disk \
             (spool) or in ClickHouse.",
    after_help = CONFIG_FILE_HELP
)]
pub struct Cli {
    /// TOML configuration file (write keys, limits, enrichment, spool, writer).
    #[arg(long, env = "SPOOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:8080. [default: 127.0.0.1:8080]
    #[arg(long, env = "SPOOR_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// ClickHouse HTTP URL. [default: http://127.0.0.1:8123]
    #[arg(long, env = "SPOOR_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database holding Spoor's tables (created if missing). [default: spoor]
    #[arg(long, env = "SPOOR_CLICKHOUSE_DATABASE")]
    pub clickhouse_database: Option<String>,
    /// ClickHouse user. [default: default]
    #[arg(long, env = "SPOOR_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password. [default: empty]
    #[arg(long, env = "SPOOR_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
    /// Render cluster DDL (ON CLUSTER, Replicated*MergeTree + Distributed) for this cluster.
    #[arg(long, env = "SPOOR_CLICKHOUSE_CLUSTER")]
    pub clickhouse_cluster: Option<String>,
    /// Keep events this many days (ClickHouse TTL on `events`); 0 removes the TTL. Unset leaves
    /// the table as it is.
    #[arg(long, env = "SPOOR_EVENTS_TTL_DAYS")]
    pub events_ttl_days: Option<u32>,
    /// Directory of the write-ahead spool: acknowledged batches live here until ClickHouse has
    /// them. Must be on a persistent disk. [default: ./spool]
    #[arg(long, env = "SPOOR_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Directory of the built browser SDK (spoor.js + wasm), served at /sdk/.
    #[arg(long, env = "SPOOR_SDK_DIR")]
    pub sdk_dir: Option<PathBuf>,
    /// Log format: text or json. [default: text]
    #[arg(long, env = "SPOOR_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The TOML file. Every field is optional; unknown fields are an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub sdk_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub clickhouse: ClickHouseFile,
    #[serde(default)]
    pub spool: SpoolFile,
    #[serde(default)]
    pub writer: WriterFile,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub enrich: EnrichFile,
    #[serde(default)]
    pub http: HttpFile,
    #[serde(default)]
    pub keys: Vec<KeyFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseFile {
    pub url: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub cluster: Option<String>,
    pub events_ttl_days: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolFile {
    pub dir: Option<PathBuf>,
    /// Above this many bytes not yet in ClickHouse, new batches get 503.
    pub high_water_bytes: Option<u64>,
    /// A segment file is closed and a new one started past this size.
    pub segment_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterFile {
    pub max_rows: Option<usize>,
    pub max_bytes: Option<usize>,
    pub max_wait_ms: Option<u64>,
    pub retry_initial_ms: Option<u64>,
    pub retry_max_ms: Option<u64>,
    pub memory_queue_bytes: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// Seconds a client should wait after a 503 (spool full, storage trouble).
    pub retry_after_secs: Option<u64>,
    /// Seconds to finish in-flight requests and drain the spool on shutdown.
    pub shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    /// Keep only the network prefix (IPv4 /24, IPv6 /48 by default).
    #[default]
    Anonymize,
    /// Store the full address.
    Full,
    /// Store nothing.
    Drop,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichFile {
    pub ip: Option<IpMode>,
    pub ipv4_prefix: Option<u8>,
    pub ipv6_prefix: Option<u8>,
    /// Number of reverse proxies in front of the collector whose `X-Forwarded-For` entries
    /// are trusted. 0 uses the socket peer address.
    pub trusted_proxy_hops: Option<usize>,
    /// Query parameters removed from page and referrer URLs (case-insensitive).
    pub scrub_query_params: Option<Vec<String>>,
    /// Corrected timestamps further in the future than this are clamped (and flagged).
    pub max_future_secs: Option<u64>,
    /// Corrected timestamps further in the past than this are clamped (and flagged).
    pub max_past_secs: Option<u64>,
    /// Secret mixed into the daily anonymous id of pixel hits (no cookie). Set the same value
    /// on every collector behind a load balancer.
    pub pixel_salt: Option<String>,
    /// E-mail addresses and phone numbers in `identify` traits: hash (default), drop, keep.
    pub contact_traits: Option<ContactTraits>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Browser key: sent from web pages, checked against `origins`.
    #[default]
    Public,
    /// Server key: only in the `Authorization: Bearer` or `X-Spoor-Key` header, never from a
    /// browser (a request with an `Origin` header is refused).
    Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub key: String,
    pub project: String,
    #[serde(default)]
    pub kind: KeyKind,
    /// Allowed browser origins, e.g. `https://shop.example`; `*` allows any.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Token-bucket rate in events per second; unset means unlimited.
    pub events_per_second: Option<u32>,
    /// Bucket size in events. Default: max(2 × rate, max events per batch).
    pub burst: Option<u32>,
}

/// The validated configuration the collector is built from.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub sdk_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub clickhouse: ClickHouseConfig,
    pub spool: SpoolConfig,
    pub writer: WriterConfig,
    pub limits: Limits,
    pub enrich: EnrichConfig,
    pub retry_after: Duration,
    pub shutdown_grace: Duration,
    pub keys: Vec<KeyConfig>,
    /// No config file: the `pk_dev` key, any origin.
    pub dev_mode: bool,
}

#[derive(Debug, Clone)]
pub struct ClickHouseConfig {
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: String,
    pub cluster: Option<String>,
    pub events_ttl_days: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    pub high_water_bytes: u64,
    pub segment_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_wait: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub memory_queue_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct EnrichConfig {
    pub ip: IpMode,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub trusted_proxy_hops: usize,
    pub scrub_query_params: Vec<String>,
    pub max_future: Duration,
    pub max_past: Duration,
    pub pixel_salt: String,
    pub contact_traits: ContactTraits,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            ip: IpMode::Anonymize,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            trusted_proxy_hops: 0,
            scrub_query_params: DEFAULT_SCRUBBED_PARAMS
                .iter()
                .map(|p| p.to_string())
                .collect(),
            max_future: Duration::from_secs(3600),
            max_past: Duration::from_secs(31 * 24 * 3600),
            pixel_salt: String::new(),
            contact_traits: ContactTraits::Hash,
        }
    }
}

/// Query parameters that commonly carry secrets or personal data.
pub const DEFAULT_SCRUBBED_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "auth",
    "code",
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "apikey",
    "key",
    "session",
    "sessionid",
    "sid",
    "email",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConfig {
    pub key: String,
    pub project: String,
    pub kind: KeyKind,
    pub origins: Vec<String>,
    pub events_per_second: Option<u32>,
    pub burst: Option<u32>,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_rows: 20_000,
            max_bytes: 32 << 20,
            max_wait: Duration::from_millis(1000),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
            memory_queue_bytes: 256 << 20,
        }
    }
}

/// The dev key used when no config file is given.
pub const DEV_KEY: &str = "pk_dev";

impl Config {
    /// Reads the file named by `--config` (if any) and merges it under the command line.
    pub fn load(cli: Cli) -> anyhow::Result<Config> {
        let file = match &cli.config {
            Some(path) => Some(read_file(path)?),
            None => None,
        };
        Config::from_parts(cli, file).map_err(anyhow::Error::msg)
    }

    /// Pure merge and validation: command line over file over defaults.
    pub fn from_parts(cli: Cli, file: Option<FileConfig>) -> Result<Config, String> {
        let dev_mode = file.is_none();
        let file = file.unwrap_or_default();
        let ch = file.clickhouse;
        let clickhouse = ClickHouseConfig {
            url: cli
                .clickhouse_url
                .or(ch.url)
                .unwrap_or_else(|| "http://127.0.0.1:8123".into()),
            database: cli
                .clickhouse_database
                .or(ch.database)
                .unwrap_or_else(|| "spoor".into()),
            user: cli
                .clickhouse_user
                .or(ch.user)
                .unwrap_or_else(|| "default".into()),
            password: cli.clickhouse_password.or(ch.password).unwrap_or_default(),
            cluster: cli.clickhouse_cluster.or(ch.cluster),
            events_ttl_days: cli.events_ttl_days.or(ch.events_ttl_days),
        };
        let layout = spoor_schema::Layout {
            database: clickhouse.database.clone(),
            cluster: clickhouse.cluster.clone(),
        };
        layout.validate()?;

        let spool = SpoolConfig {
            dir: cli
                .spool_dir
                .or(file.spool.dir)
                .unwrap_or_else(|| PathBuf::from("spool")),
            high_water_bytes: file.spool.high_water_bytes.unwrap_or(1 << 30),
            segment_bytes: file.spool.segment_bytes.unwrap_or(64 << 20),
        };
        if spool.segment_bytes < 4096 {
            return Err("spool.segment_bytes must be at least 4096".into());
        }

        let d = WriterConfig::default();
        let w = file.writer;
        let writer = WriterConfig {
            max_rows: w.max_rows.unwrap_or(d.max_rows).max(1),
            max_bytes: w.max_bytes.unwrap_or(d.max_bytes).max(1),
            max_wait: w
                .max_wait_ms
                .map(Duration::from_millis)
                .unwrap_or(d.max_wait),
            retry_initial: w
                .retry_initial_ms
                .map(Duration::from_millis)
                .unwrap_or(d.retry_initial),
            retry_max: w
                .retry_max_ms
                .map(Duration::from_millis)
                .unwrap_or(d.retry_max),
            memory_queue_bytes: w.memory_queue_bytes.unwrap_or(d.memory_queue_bytes),
        };

        let limits = file.limits;
        if limits.max_body_bytes == 0 || limits.max_decompressed_bytes == 0 {
            return Err("limits.max_body_bytes and max_decompressed_bytes must be > 0".into());
        }

        let d = EnrichConfig::default();
        let e = file.enrich;
        let enrich = EnrichConfig {
            ip: e.ip.unwrap_or(d.ip),
            ipv4_prefix: e.ipv4_prefix.unwrap_or(d.ipv4_prefix),
            ipv6_prefix: e.ipv6_prefix.unwrap_or(d.ipv6_prefix),
            trusted_proxy_hops: e.trusted_proxy_hops.unwrap_or(d.trusted_proxy_hops),
            scrub_query_params: e
                .scrub_query_params
                .map(|ps| ps.into_iter().map(|p| p.to_ascii_lowercase()).collect())
                .unwrap_or(d.scrub_query_params),
            max_future: e
                .max_future_secs
                .map(Duration::from_secs)
                .unwrap_or(d.max_future),
            max_past: e
                .max_past_secs
                .map(Duration::from_secs)
                .unwrap_or(d.max_past),
            pixel_salt: e.pixel_salt.unwrap_or_default(),
            contact_traits: e.contact_traits.unwrap_or(d.contact_traits),
        };
        if enrich.ipv4_prefix > 32 || enrich.ipv6_prefix > 128 {
            return Err("enrich.ipv4_prefix must be ≤ 32 and ipv6_prefix ≤ 128".into());
        }

        let keys = if dev_mode {
            vec![KeyConfig {
                key: DEV_KEY.into(),
                project: "dev".into(),
                kind: KeyKind::Public,
                origins: vec!["*".into()],
                events_per_second: None,
                burst: None,
            }]
        } else {
            file.keys
                .into_iter()
                .map(|k| KeyConfig {
                    key: k.key,
                    project: k.project,
                    kind: k.kind,
                    origins: k.origins,
                    events_per_second: k.events_per_second,
                    burst: k.burst,
                })
                .collect()
        };
        validate_keys(&keys)?;

        Ok(Config {
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            sdk_dir: cli.sdk_dir.or(file.sdk_dir),
            log_format: cli.log_format.or(file.log_format).unwrap_or_default(),
            clickhouse,
            spool,
            writer,
            limits,
            enrich,
            retry_after: Duration::from_secs(file.http.retry_after_secs.unwrap_or(5).max(1)),
            shutdown_grace: Duration::from_secs(file.http.shutdown_grace_secs.unwrap_or(30)),
            keys,
            dev_mode,
        })
    }

    pub fn layout(&self) -> spoor_schema::Layout {
        spoor_schema::Layout {
            database: self.clickhouse.database.clone(),
            cluster: self.clickhouse.cluster.clone(),
        }
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    parse_file(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

/// Parses the TOML text of a config file.
pub fn parse_file(text: &str) -> Result<FileConfig, toml::de::Error> {
    toml::from_str(text)
}

fn validate_keys(keys: &[KeyConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for k in keys {
        if k.key.len() < 4 || !k.key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "key {:?}: keys must be at least 4 printable ASCII characters",
                k.key
            ));
        }
        if !seen.insert(k.key.as_str()) {
            return Err(format!("key {:?} is listed twice", k.key));
        }
        if k.project.is_empty() || k.project.len() > 100 {
            return Err(format!("key {:?}: project must be 1-100 characters", k.key));
        }
        match k.kind {
            KeyKind::Secret if !k.origins.is_empty() => {
                return Err(format!(
                    "key {:?}: secret keys are for servers and take no origins",
                    k.key
                ));
            }
            KeyKind::Public if k.origins.is_empty() => {
                return Err(format!(
                    "key {:?}: public keys need `origins` (use [\"*\"] to allow any)",
                    k.key
                ));
            }
            _ => {}
        }
        for origin in &k.origins {
            if origin != "*" && url::Url::parse(origin).is_err() {
                return Err(format!(
                    "key {:?}: origin {origin:?} must be `*` or like https://shop.example",
                    k.key
                ));
            }
        }
        if k.events_per_second == Some(0) || k.burst == Some(0) {
            return Err(format!(
                "key {:?}: events_per_second and burst must be > 0",
                k.key
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_validates() {
        let text = include_str!("../spoor.example.toml");
        let file = parse_file(text).unwrap();
        let config = Config::from_parts(Cli::default(), Some(file)).unwrap();
        assert!(!config.dev_mode);
        assert!(config.keys.iter().any(|k| k.kind == KeyKind::Secret));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let err = parse_file("[spool]\ndirectory = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `directory`"), "{err}");
        let err = parse_file("[limits]\nmax_body = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn command_line_wins_over_file() {
        let file = parse_file(
            "listen = \"127.0.0.1:1\"\n[clickhouse]\ndatabase = \"from_file\"\n[[keys]]\nkey = \"pk_x\"\nproject = \"p\"\norigins = [\"*\"]\n",
        )
        .unwrap();
        let cli = Cli {
            clickhouse_database: Some("from_cli".into()),
            ..Cli::default()
        };
        let config = Config::from_parts(cli, Some(file)).unwrap();
        assert_eq!(config.clickhouse.database, "from_cli");
        assert_eq!(config.listen.port(), 1);
    }

    #[test]
    fn dev_mode_without_file() {
        let config = Config::from_parts(Cli::default(), None).unwrap();
        assert!(config.dev_mode);
        assert_eq!(config.keys[0].key, DEV_KEY);
        assert_eq!(config.keys[0].origins, vec!["*"]);
    }

    #[track_caller]
    fn check_invalid(toml: &str, expected: &str) {
        let file = parse_file(toml).unwrap();
        let err = Config::from_parts(Cli::default(), Some(file)).unwrap_err();
        assert!(
            err.contains(expected),
            "{err:?} should contain {expected:?}"
        );
    }

    #[test]
    fn invalid_configs() {
        check_invalid("[clickhouse]\ndatabase = \"a-b\"\n", "database name");
        check_invalid(
            "[[keys]]\nkey = \"pk_x\"\nproject = \"p\"\n",
            "public keys need `origins`",
        );
        check_invalid(
            "[[keys]]\nkey = \"sk_x\"\nproject = \"p\"\nkind = \"secret\"\norigins = [\"*\"]\n",
            "take no origins",
        );
        check_invalid(
            "[[keys]]\nkey = \"pk_x\"\nproject = \"p\"\norigins = [\"*\"]\n[[keys]]\nkey = \"pk_x\"\nproject = \"q\"\norigins = [\"*\"]\n",
            "listed twice",
        );
        check_invalid(
            "[[keys]]\nkey = \"pk_x\"\nproject = \"p\"\norigins = [\"shop\"]\n",
            "must be `*` or like",
        );
        check_invalid("[enrich]\nipv4_prefix = 33\n", "ipv4_prefix");
    }
}
