//! `tracker serve --smtp URL --mail-from ADDR`, `--webhook-allow-host HOST`
//! and the alert flags: checked once into what the deliverer needs (the
//! notification key, the SMTP channel if any, the webhook channel, the
//! deliverer's settings). The deliverer runs whenever the key can be kept
//! (beside the SQLite file, or `--notify-key-file`): webhooks need no flag.
//! SMTP credentials come from `TRACKER_SMTP_USER` / `TRACKER_SMTP_PASSWORD`
//! only: argv is visible to every user of the machine, and neither is ever
//! printed.

use std::path::PathBuf;

use clap::Args;
use portal_api::{
    AlertPolicy, Channels, DelivererConfig, LateRiskBasis, NotifyKey, SmtpChannel, SmtpSettings,
    WebhookChannel,
};

use super::bad_input;

#[derive(Debug, Args)]
pub(crate) struct NotifyArgs {
    /// Send milestone e-mails through this SMTP server: `smtp://HOST:PORT`
    /// (plain, a local relay), `smtp://HOST:PORT?tls=starttls` or
    /// `smtps://HOST:PORT`; credentials from TRACKER_SMTP_USER and
    /// TRACKER_SMTP_PASSWORD. Without it no e-mail is sent.
    #[arg(long, env = "TRACKER_SMTP")]
    smtp: Option<String>,
    /// The sender of milestone e-mails, `"Name <addr@example.com>"` (needed
    /// with --smtp).
    #[arg(long, env = "TRACKER_MAIL_FROM")]
    mail_from: Option<String>,
    /// Who customers may write to, shown in e-mails (default: the sender).
    #[arg(long, env = "TRACKER_MAIL_CONTACT")]
    mail_contact: Option<String>,
    /// The key that seals tracking codes for e-mails and makes unsubscribe
    /// tokens (made on first use; default: beside the SQLite file, `PATH.notify-key`).
    #[arg(long, env = "TRACKER_NOTIFY_KEY_FILE")]
    notify_key_file: Option<PathBuf>,
    /// How long an e-mail the SMTP server keeps refusing is retried before it
    /// is marked failed, seconds.
    #[arg(long, default_value_t = 24.0 * 3600.0)]
    notify_retry_for_s: f64,
    /// How long a node's claim on an e-mail holds; one still `sending` after
    /// it was interrupted (the node died) and is marked failed, never resent,
    /// seconds.
    #[arg(long, default_value_t = 120.0)]
    notify_lease_s: f64,
    /// Which prediction raises a stop's late risk when it passes the end of
    /// the stop's window: `eta` or `p90`.
    #[arg(long, default_value = "p90")]
    late_risk_on: String,
    /// How long a stop must stay late (or back within its window) before
    /// its late risk is raised (or cleared), seconds.
    #[arg(long, default_value_t = 120)]
    late_risk_hold_s: u32,
    /// At most one `eta_changed` message per rule and order this often,
    /// seconds.
    #[arg(long, default_value_t = 600)]
    eta_changed_every_s: u32,
    /// The first retry of a message that could not be delivered comes after
    /// this long, doubling per attempt (±50 % jitter, at most 15 min), seconds.
    #[arg(long, default_value_t = 2.0)]
    notify_first_retry_s: f64,
    /// A host webhooks may call although it is private or loopback, over
    /// plain http too (repeatable). Without it, only https:// to public
    /// addresses.
    #[arg(long = "webhook-allow-host", value_name = "HOST")]
    webhook_allow_hosts: Vec<String>,
    /// A webhook endpoint is disabled once this many of its messages in a
    /// row failed after every retry (re-enable: POST /api/v1/webhooks/{id}/enable).
    #[arg(long, default_value_t = 5)]
    webhook_disable_after: u32,
    /// How long a webhook endpoint has to answer, seconds.
    #[arg(long, default_value_t = 10.0)]
    webhook_timeout_s: f64,
    /// Webhook `position` events are coalesced: at most one per endpoint and
    /// truck this often (the truck's latest fix), seconds.
    #[arg(long, default_value_t = 30.0)]
    webhook_position_every_s: f64,
}

/// What `serve` needs to deliver e-mails and webhooks.
#[derive(Debug)]
pub(crate) struct Notify {
    pub(crate) key: NotifyKey,
    pub(crate) channels: Channels,
    pub(crate) config: DelivererConfig,
    /// Who customers may write to (with e-mails on).
    pub(crate) contact: Option<String>,
    pub(crate) webhook_allow_hosts: Vec<String>,
}

impl NotifyArgs {
    /// How ETAs are judged for alerts (late risk, ETA changes), e-mails on or
    /// not: the order JSON and webhooks show them too.
    pub(crate) fn alerts(&self) -> anyhow::Result<AlertPolicy> {
        let policy = AlertPolicy {
            late_risk_on: LateRiskBasis::parse(&self.late_risk_on)
                .map_err(|e| bad_input(format!("--late-risk-on: {e}")))?,
            hold: chrono::Duration::seconds(i64::from(self.late_risk_hold_s)),
            eta_changed_every: chrono::Duration::seconds(i64::from(self.eta_changed_every_s)),
            ..AlertPolicy::recommended()
        };
        Ok(policy)
    }

    /// The SMTP settings, or `None` without `--smtp`.
    fn smtp(&self, config: &DelivererConfig) -> anyhow::Result<Option<(SmtpChannel, String)>> {
        let Some(smtp) = &self.smtp else {
            if self.mail_from.is_some() {
                return Err(bad_input("--mail-from needs --smtp"));
            }
            return Ok(None);
        };
        let mail_from = self
            .mail_from
            .as_deref()
            .ok_or_else(|| bad_input("--smtp needs --mail-from \"Name <addr@example.com>\""))?;
        let credentials = match (
            std::env::var("TRACKER_SMTP_USER").ok(),
            std::env::var("TRACKER_SMTP_PASSWORD").ok(),
        ) {
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            _ => {
                return Err(bad_input(
                    "set both TRACKER_SMTP_USER and TRACKER_SMTP_PASSWORD, or neither",
                ));
            }
        };
        let settings = SmtpSettings::parse(smtp, mail_from, credentials)
            .map_err(|e| bad_input(format!("--smtp / --mail-from: {e}")))?;
        let channel = SmtpChannel::new(&settings, config.smtp_timeout())
            .map_err(|e| bad_input(format!("--smtp: {e}")))?;
        let contact = self
            .mail_contact
            .clone()
            .unwrap_or_else(|| settings.mail_from.email.to_string());
        Ok(Some((channel, contact)))
    }

    /// The deliverer's settings, or `None` when no key can be kept (a store
    /// other than SQLite and no `--notify-key-file`; then `--smtp` is an
    /// error). Bad flags are bad input.
    pub(crate) fn prepare(
        &self,
        store_url: &str,
        public_url: &str,
    ) -> anyhow::Result<Option<Notify>> {
        let mut config = DelivererConfig::recommended(public_url);
        for (flag, value) in [
            ("--notify-retry-for-s", self.notify_retry_for_s),
            ("--notify-lease-s", self.notify_lease_s),
            ("--notify-first-retry-s", self.notify_first_retry_s),
            ("--webhook-timeout-s", self.webhook_timeout_s),
            ("--webhook-position-every-s", self.webhook_position_every_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(bad_input(format!(
                    "{flag} {value}: must be a positive number"
                )));
            }
        }
        let ms = |s: f64| chrono::Duration::milliseconds((s * 1000.0) as i64);
        config.retry_for = ms(self.notify_retry_for_s);
        config.lease = ms(self.notify_lease_s);
        config.first_retry = ms(self.notify_first_retry_s);
        config.webhook_disable_after = self.webhook_disable_after;
        config.webhook_position_every = ms(self.webhook_position_every_s);
        config.validate().map_err(|e| {
            bad_input(format!(
                "--notify-lease-s / --notify-retry-for-s / --webhook-disable-after: {e}"
            ))
        })?;
        portal_api::validate_allow_hosts(&self.webhook_allow_hosts)
            .map_err(|e| bad_input(format!("--webhook-allow-host: {e}")))?;
        let smtp = self.smtp(&config)?;
        let key_file = match (&self.notify_key_file, store_url.strip_prefix("sqlite://")) {
            (Some(path), _) => path.clone(),
            (None, Some(db)) => PathBuf::from(format!("{db}.notify-key")),
            (None, None) if smtp.is_some() => {
                return Err(bad_input("--smtp needs --notify-key-file with this store"));
            }
            (None, None) => return Ok(None),
        };
        // A key file that cannot be read or made is the environment's fault
        // (exit 1), with the reason.
        let key = NotifyKey::load_or_create(&key_file)?;
        let (smtp, contact) = match smtp {
            Some((channel, contact)) => (Some(channel), Some(contact)),
            None => (None, None),
        };
        config.contact = contact.clone().unwrap_or_default();
        let webhooks = WebhookChannel::new(
            self.webhook_allow_hosts.clone(),
            std::time::Duration::from_secs_f64(self.webhook_timeout_s),
        );
        Ok(Some(Notify {
            key,
            channels: Channels { smtp, webhooks },
            config,
            contact,
            webhook_allow_hosts: self.webhook_allow_hosts.clone(),
        }))
    }
}
