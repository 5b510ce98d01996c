//! Configuration: defaults, then a TOML file, then `LENDCORE_…` environment variables
//! (sections split by `__`, e.g. `LENDCORE_DATABASE__URL`), then command-line flags.
//! Secrets (the database URL may carry a password) are never printed or logged in clear.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lendcore_domain::apr::{self, AprCap};
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub server: ServerConfig,
    pub jobs: JobsConfig,
    pub cob: CobConfig,
    pub lending: LendingConfig,
    pub log: LogConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    /// Payment channels, first choice first (`[[channels]]` in TOML).
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// The SMS gateway sign-in codes are sent through; without it borrowers cannot sign in.
    #[serde(default)]
    pub sms: Option<SmsConfig>,
    /// The mail server borrowers' emails go through.
    #[serde(default)]
    pub smtp: Option<SmtpSettings>,
    /// The lender's endpoints that receive signed events (`[[webhooks]]`).
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    pub notifications: NotificationsConfig,
    /// Who checks identities by bank card or face; without it only the SMS code is offered.
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// The credit bureau credit decisions ask (`[bureau]`); without it, a policy that reads
    /// bureau features decides as its `bureau_unavailable` says, and the record says so.
    #[serde(default)]
    pub bureau: Option<BureauConfig>,
    #[serde(default)]
    pub support: SupportConfig,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SupportConfig {
    /// How soon support owes a support case an answer, in minutes (4 hours unless set); a
    /// reminder goes a quarter of that before, and an alert when it passes.
    #[serde(default = "four_hours")]
    pub response_minutes: u32,
}

fn four_hours() -> u32 {
    240
}

impl Default for SupportConfig {
    fn default() -> Self {
        Self {
            response_minutes: four_hours(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum BureauConfig {
    /// A bureau (or the lender's adapter in front of one) speaking docs/BUREAU_PROTOCOL.md.
    Http {
        /// How decision records name it, e.g. `pboc-adapter`.
        name: String,
        base_url: String,
        api_key: SecretString,
        /// How long an inquiry may take before the bureau counts as unavailable.
        #[serde(default = "default_bureau_timeout_ms")]
        timeout_ms: u64,
    },
    /// The sandbox bureau, profiles scripted by the applicant's name: for rehearsals, never for
    /// real borrowers.
    Sandbox,
}

fn default_bureau_timeout_ms() -> u64 {
    3_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum IdentityConfig {
    /// A provider speaking lendcore's identity protocol (see connectors/src/identity.rs).
    Http {
        base_url: String,
        api_key: SecretString,
        /// Which of `bank_card` and `face` it offers.
        methods: Vec<lendcore_connectors::identity::Method>,
        #[serde(default = "default_sms_timeout_ms")]
        timeout_ms: u64,
    },
    /// The sandbox provider, scripted by the applicant's name: for rehearsals, never for real
    /// borrowers.
    Sandbox,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// `tls` (port 465), `starttls` (587) or `none` (a relay on this host only).
    pub security: lendcore_connectors::email::SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// `Lender <noreply@lender.example>`.
    pub from: String,
    #[serde(default = "default_sms_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub id: String,
    pub url: String,
    /// The secret requests are signed with (docs/WEBHOOKS.md); share it with the receiver.
    pub secret: SecretString,
    /// `*`, a family such as `drawdown.*`, or exact topics.
    pub topics: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// `en` or `zh-Hans` (the default): the language borrowers are written to.
    #[serde(default)]
    pub language: Option<lendcore_domain::reasons::Language>,
    /// How long a webhook receiver has to answer, in milliseconds.
    #[serde(default)]
    pub webhook_timeout_ms: Option<u64>,
    /// The address a link's token is appended to, for the links lendcore texts borrowers
    /// itself (`POST /v1/loans/{id}/view-link`), e.g. `https://app.lender.example/open?link=`.
    #[serde(default)]
    pub link_base_url: Option<String>,
    /// Where operators reach lendcore's API, e.g. `https://lendcore.lender.internal`: alert
    /// messages link their examples there (without it they give the paths alone).
    #[serde(default)]
    pub operator_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The gateway speaking lendcore's SMS protocol (docs/SMS_GATEWAY.md).
    pub base_url: String,
    pub api_key: SecretString,
    #[serde(default = "default_sms_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_sms_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub id: String,
    pub base_url: String,
    pub api_key: SecretString,
    /// The secret the channel signs its callbacks with; without one, callbacks are unverified
    /// (they still only prompt a query).
    #[serde(default)]
    pub callback_secret: Option<SecretString>,
    #[serde(default = "default_channel_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_channel_timeout_ms() -> u64 {
    10_000
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LendingConfig {
    /// Legal APR caps: products and quotes above a binding one are refused; the others are
    /// reported with every quote.
    pub apr_caps: Vec<AprCap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://user:password@host/db`.
    pub url: SecretString,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub max_body_bytes: usize,
    pub request_timeout_ms: u64,
    pub max_in_flight: usize,
    pub max_queued: usize,
    pub queue_timeout_ms: u64,
    /// On SIGTERM: how long requests and jobs in flight have to finish before the process
    /// exits anyway (jobs it did not finish are handed back at once, for another process); at
    /// least `request_timeout_ms`, by which every request has ended.
    pub shutdown_grace_ms: u64,
    /// Behind a reverse proxy: the header holding the client's address (e.g.
    /// `x-forwarded-for`; its last entry is taken). Unset: the peer's address. Only set it when
    /// every request comes through a proxy that writes that header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Run the job runner in this process.
    pub enabled: bool,
    pub batch: u32,
    pub lease_secs: i64,
    pub idle_poll_ms: u64,
    pub base_delay_ms: i64,
    pub max_delay_ms: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// 64 hex digits (32 random bytes, `openssl rand -hex 32`): the key personal data is
    /// encrypted with at rest. Without it, borrowers cannot be stored. Keep it secret, back it
    /// up: data sealed under a lost key is lost.
    #[serde(default)]
    pub pii_key: Option<SecretString>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CobConfig {
    /// Schedule the daily close of business from this process (any number may; it runs once).
    pub enabled: bool,
    /// `HH:MM`, UTC: a business date closes once this time has passed on the next day.
    pub run_after: String,
    /// Loans closed per transaction: fewer holds SQLite's writer, which requests wait for, for
    /// less time; more is faster, up to a point (docs/PERFORMANCE.md).
    pub batch: u32,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `lendcore=debug,sqlx=warn`.
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
}

/// The defaults, as the shape a TOML file has.
#[derive(Serialize)]
struct Defaults {
    database: DefaultDatabase,
    server: ServerConfig,
    jobs: JobsConfig,
    cob: CobConfig,
    lending: LendingConfig,
    log: LogConfig,
}

#[derive(Serialize)]
struct DefaultDatabase {
    url: &'static str,
    max_connections: u32,
    acquire_timeout_ms: u64,
}

fn defaults() -> Defaults {
    Defaults {
        database: DefaultDatabase {
            url: "sqlite://lendcore.sqlite3",
            max_connections: 16,
            acquire_timeout_ms: 10_000,
        },
        server: ServerConfig {
            bind: "127.0.0.1:8080".into(),
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            max_in_flight: 256,
            max_queued: 1024,
            queue_timeout_ms: 500,
            shutdown_grace_ms: 15_000,
            client_ip_header: None,
        },
        jobs: JobsConfig {
            enabled: true,
            batch: 8,
            lease_secs: 60,
            idle_poll_ms: 500,
            base_delay_ms: 2_000,
            max_delay_ms: 600_000,
        },
        cob: CobConfig {
            enabled: true,
            run_after: "00:30".into(),
            batch: 200,
        },
        lending: LendingConfig {
            apr_caps: apr::default_caps(),
        },
        log: LogConfig {
            filter: "info,sqlx=warn".into(),
            format: "text".into(),
        },
    }
}

/// Flags that override everything else.
#[derive(Debug, Default)]
pub struct Overrides {
    pub db: Option<String>,
    pub bind: Option<String>,
}

impl Config {
    /// Loads `file` (if given; `lendcore.toml` if present otherwise), then the environment,
    /// then `overrides`.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(defaults()));
        match file {
            Some(path) => {
                anyhow::ensure!(
                    path.exists(),
                    "config file {} does not exist",
                    path.display()
                );
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("lendcore.toml")),
        }
        // Only SECTION__KEY variables are settings; LENDCORE_LOG, LENDCORE_CONFIG and
        // LENDCORE_TEST_PG are read by name elsewhere.
        figment = figment.merge(
            Env::prefixed("LENDCORE_")
                .split("__")
                .filter(|key| key.as_str().contains('.')),
        );
        if let Some(db) = overrides.db {
            figment = figment.merge(("database.url", db));
        }
        if let Some(bind) = overrides.bind {
            figment = figment.merge(("server.bind", bind));
        }
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// Refuses values that would make the service misbehave rather than fail to start.
    fn validate(&self) -> anyhow::Result<()> {
        let bureau_timeout_ok = match &self.bureau {
            Some(BureauConfig::Http { timeout_ms, .. }) => (100..=60_000).contains(timeout_ms),
            Some(BureauConfig::Sandbox) | None => true,
        };
        let checks: [(bool, &str); 13] = [
            (
                bureau_timeout_ok,
                "bureau.timeout_ms must be between 100 and 60000",
            ),
            (
                self.database.max_connections >= 1,
                "database.max_connections must be at least 1",
            ),
            (
                self.database.acquire_timeout_ms >= 100,
                "database.acquire_timeout_ms must be at least 100",
            ),
            (
                self.server.max_body_bytes >= 1024,
                "server.max_body_bytes must be at least 1024",
            ),
            (
                self.server.request_timeout_ms >= 100,
                "server.request_timeout_ms must be at least 100",
            ),
            (
                self.server.max_in_flight >= 1,
                "server.max_in_flight must be at least 1",
            ),
            (
                (1..=1000).contains(&self.jobs.batch),
                "jobs.batch must be between 1 and 1000",
            ),
            (
                (4..=10_080).contains(&self.support.response_minutes),
                "support.response_minutes must be between 4 and 10080 (a week)",
            ),
            (
                (5..=86_400).contains(&self.jobs.lease_secs),
                "jobs.lease_secs must be between 5 and 86400",
            ),
            (
                self.jobs.idle_poll_ms >= 10,
                "jobs.idle_poll_ms must be at least 10",
            ),
            (
                // Requests in flight end by their own timeout; the grace waits for them.
                (self.server.request_timeout_ms..=600_000).contains(&self.server.shutdown_grace_ms),
                "server.shutdown_grace_ms must be at least server.request_timeout_ms and at most 600000 (ten minutes)",
            ),
            (
                (1..=3_600_000).contains(&self.jobs.base_delay_ms),
                "jobs.base_delay_ms must be between 1 and 3600000",
            ),
            (
                (self.jobs.base_delay_ms..=86_400_000).contains(&self.jobs.max_delay_ms),
                "jobs.max_delay_ms must be between jobs.base_delay_ms and 86400000",
            ),
        ];
        // A payout call must finish well inside the job's lease, or the runner cuts it off
        // mid-call on every attempt.
        let lease_ms = u64::try_from(self.jobs.lease_secs).unwrap_or(0) * 1000;
        let channels_fit = self
            .channels
            .iter()
            .all(|c| c.timeout_ms.saturating_mul(3) <= lease_ms);
        let caps_sane = self
            .lending
            .apr_caps
            .iter()
            .all(|cap| cap.limit > Decimal::ZERO && cap.limit <= Decimal::TEN);
        let problems: Vec<&str> = checks
            .iter()
            .chain(
                [
                    (
                        caps_sane,
                        "lending.apr_caps limits must be above 0 and at most 10",
                    ),
                    (
                        (1..=5000).contains(&self.cob.batch),
                        "cob.batch must be between 1 and 5000",
                    ),
                    (
                        self.cob_run_after().is_some(),
                        "cob.run_after must be a time of day as HH:MM",
                    ),
                    (
                        channels_fit,
                        "jobs.lease_secs must be at least 3 × every channel's timeout_ms",
                    ),
                    (
                        self.webhooks.iter().all(|w| {
                            (w.url.starts_with("https://") || w.url.starts_with("http://"))
                                && !w.topics.is_empty()
                                && w.secret.expose_secret().len() >= 16
                        }),
                        "every [[webhooks]] needs an http(s) url, at least one topic and a secret of 16 characters or more",
                    ),
                    (
                        self.webhooks
                            .iter()
                            .flat_map(|w| &w.topics)
                            .all(|t| subscribable(t)),
                        "every [[webhooks]] topic is *, a family such as drawdown.*, or a topic lendcore sends (docs/WEBHOOKS.md)",
                    ),
                    (
                        // A link signs its borrower in: it never travels in clear, except
                        // to this machine (a rehearsal).
                        self.notifications.link_base_url.as_ref().is_none_or(|u| {
                            reqwest::Url::parse(u).is_ok_and(|url| {
                                url.scheme() == "https"
                                    || (url.scheme() == "http"
                                        && matches!(url.host_str(), Some("localhost" | "127.0.0.1")))
                            })
                        }),
                        "notifications.link_base_url must be an https:// address",
                    ),
                    (
                        self.notifications.operator_url.as_ref().is_none_or(|u| {
                            reqwest::Url::parse(u).is_ok_and(|url| {
                                matches!(url.scheme(), "https" | "http") && url.has_host()
                            })
                        }),
                        "notifications.operator_url must be an http:// or https:// address",
                    ),
                    (
                        self.smtp.as_ref().is_none_or(|m| {
                            m.security != lendcore_connectors::email::SmtpSecurity::None
                                || m.username.is_none()
                                || ["localhost", "127.0.0.1", "::1"].contains(&m.host.as_str())
                        }),
                        "smtp.security = \"none\" sends the password in clear: only to a relay on this host",
                    ),
                    (
                        (self.webhooks.is_empty()
                            || self.notifications.webhook_timeout_ms.unwrap_or(10_000).saturating_mul(3) <= lease_ms)
                            && self.smtp.as_ref().is_none_or(|m| m.timeout_ms.saturating_mul(3) <= lease_ms),
                        "jobs.lease_secs must be at least 3 × notifications.webhook_timeout_ms and smtp.timeout_ms",
                    ),
                    (
                        self.server.client_ip_header.is_none() || self.client_ip_header().is_some(),
                        "server.client_ip_header must be a header name, e.g. x-forwarded-for",
                    ),
                ]
                .iter(),
            )
            .filter(|(ok, _)| !ok)
            .map(|(_, why)| *why)
            .collect();
        anyhow::ensure!(
            problems.is_empty(),
            "invalid configuration: {}",
            problems.join("; ")
        );
        Ok(())
    }

    /// When the daily close of business may run for the day before.
    pub fn cob_run_after(&self) -> Option<chrono::NaiveTime> {
        chrono::NaiveTime::parse_from_str(&self.cob.run_after, "%H:%M").ok()
    }

    pub fn database_url(&self) -> &str {
        self.database.url.expose_secret()
    }

    pub fn connect_options(&self) -> lendcore_store::ConnectOptions {
        lendcore_store::ConnectOptions {
            max_connections: self.database.max_connections,
            acquire_timeout: Duration::from_millis(self.database.acquire_timeout_ms),
            create_if_missing: true,
            ..lendcore_store::ConnectOptions::default()
        }
    }

    pub fn http_limits(&self) -> lendcore_server::HttpLimits {
        lendcore_server::HttpLimits {
            max_body_bytes: self.server.max_body_bytes,
            request_timeout: Duration::from_millis(self.server.request_timeout_ms),
            max_in_flight: self.server.max_in_flight,
            max_queued: self.server.max_queued,
            queue_timeout: Duration::from_millis(self.server.queue_timeout_ms),
            client_ip_header: self.client_ip_header(),
        }
    }

    fn client_ip_header(&self) -> Option<axum::http::HeaderName> {
        self.server
            .client_ip_header
            .as_deref()
            .and_then(|h| axum::http::HeaderName::try_from(h).ok())
    }

    /// The effective configuration as TOML, with the database password masked.
    pub fn to_redacted_toml(&self) -> String {
        let mut out = String::new();
        out.push_str("[database]\n");
        out.push_str(&format!(
            "url = {:?}\nmax_connections = {}\nacquire_timeout_ms = {}\n\n",
            lendcore_store::redact_url(self.database_url()),
            self.database.max_connections,
            self.database.acquire_timeout_ms
        ));
        let rest = serde_json::json!({
            "server": self.server,
            "jobs": self.jobs,
            "cob": self.cob,
            "log": self.log,
            "support": self.support,
        });
        if self.security.pii_key.is_some() {
            out.push_str("[security]\npii_key = \"***\"\n\n");
        }
        if let Some(smtp) = &self.smtp {
            out.push_str(&format!(
                "[smtp]\nhost = {:?}\nport = {}\nsecurity = {:?}\nfrom = {:?}\npassword = \"***\"\n\n",
                smtp.host,
                smtp.port,
                serde_json::to_value(smtp.security)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or(""),
                smtp.from
            ));
        }
        for webhook in &self.webhooks {
            out.push_str(&format!(
                "[[webhooks]]\nid = {:?}\nurl = {:?}\nsecret = \"***\"\ntopics = {:?}\n\n",
                webhook.id, webhook.url, webhook.topics
            ));
        }
        if let Some(sms) = &self.sms {
            out.push_str(&format!(
                "[sms]\nbase_url = {:?}\napi_key = \"***\"\ntimeout_ms = {}\n\n",
                sms.base_url, sms.timeout_ms
            ));
        }
        for channel in &self.channels {
            out.push_str(&format!(
                "[[channels]]\nid = {:?}\nbase_url = {:?}\napi_key = \"***\"\ncallback_secret = \"***\"\ntimeout_ms = {}\n\n",
                channel.id, channel.base_url, channel.timeout_ms
            ));
        }
        for cap in &self.lending.apr_caps {
            out.push_str(&format!(
                "[[lending.apr_caps]]\nname = {:?}\nlimit = \"{}\"\nbasis = {:?}\nbinding = {}\n\n",
                cap.name,
                cap.limit,
                serde_json::to_value(cap.basis)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or(""),
                cap.binding
            ));
        }
        for (section, values) in rest.as_object().into_iter().flatten() {
            out.push_str(&format!("[{section}]\n"));
            for (key, value) in values.as_object().into_iter().flatten() {
                out.push_str(&format!("{key} = {value}\n"));
            }
            out.push('\n');
        }
        out
    }
}

/// Whether a webhook can subscribe to `topic`: everything, a family of topics lendcore sends,
/// or one of them. A misspelt topic would otherwise receive nothing, silently.
fn subscribable(topic: &str) -> bool {
    use lendcore_domain::topic::Topic;
    match topic.strip_suffix(".*") {
        _ if topic == "*" => true,
        Some(family) => Topic::ALL
            .iter()
            .any(|t| t.as_str().split('.').next() == Some(family)),
        None => Topic::parse(topic).is_some(),
    }
}

#[cfg(test)]
// figment::Jail fixes its closure's error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_flags_with_the_password_never_shown() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[database]\nurl = \"postgres://app:hunter2@db/lend\"\n[server]\nbind = \"0.0.0.0:9000\"\nmax_in_flight = 7\n",
            )?;
            jail.set_env("LENDCORE_SERVER__MAX_IN_FLIGHT", "9");
            jail.set_env("LENDCORE_TEST_PG", "postgres://ignored");
            jail.set_env("LENDCORE_LOG", "debug");
            let config = Config::load(
                Some(Path::new("custom.toml")),
                Overrides {
                    db: None,
                    bind: Some("127.0.0.1:7000".into()),
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(config.server.bind, "127.0.0.1:7000");
            assert_eq!(config.server.max_in_flight, 9);
            assert_eq!(config.database_url(), "postgres://app:hunter2@db/lend");
            let shown = format!("{config:?}\n{}", config.to_redacted_toml());
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("postgres://app:***@db/lend"));
            Ok(())
        });
    }

    #[test]
    fn a_typo_is_an_error_not_a_silent_default() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[server]\nbnid = \"0.0.0.0:1\"\n")?;
            jail.create_file("section.toml", "[sever]\nbind = \"0.0.0.0:1\"\n")?;
            for (file, typo) in [("typo.toml", "bnid"), ("section.toml", "sever")] {
                let err = Config::load(Some(Path::new(file)), Overrides::default()).unwrap_err();
                assert!(format!("{err:#}").contains(typo), "{err:#}");
            }
            Ok(())
        });
    }

    #[test]
    fn apr_caps_come_from_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "caps.toml",
                "[[lending.apr_caps]]\nname = \"statutory\"\nlimit = \"0.24\"\nbasis = \"effective\"\nbinding = true\n",
            )?;
            let config = Config::load(Some(Path::new("caps.toml")), Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(config.lending.apr_caps.len(), 1);
            assert_eq!(config.lending.apr_caps[0].limit, Decimal::new(24, 2));
            assert!(config.to_redacted_toml().contains("name = \"statutory\""));
            Ok(())
        });
    }

    #[test]
    fn values_that_would_break_the_service_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LENDCORE_JOBS__LEASE_SECS", "0");
            jail.set_env("LENDCORE_SERVER__REQUEST_TIMEOUT_MS", "0");
            jail.set_env("LENDCORE_COB__RUN_AFTER", "25:00");
            let err = Config::load(None, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("jobs.lease_secs")
                    && err.contains("request_timeout_ms")
                    && err.contains("cob.run_after"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn a_webhook_subscribes_to_topics_lendcore_sends() {
        for (topic, ok) in [
            ("*", true),
            ("drawdown.*", true),
            ("drawdown.paid_out", true),
            ("drawdown.paidout", false),
            ("drawdowns.*", false),
        ] {
            assert_eq!(subscribable(topic), ok, "{topic}");
        }
    }
}
