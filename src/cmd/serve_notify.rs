//! `tracker serve --smtp URL --mail-from ADDR`: the flags of milestone
//! e-mails, checked once into what the deliverer needs (the notification key,
//! the SMTP channel, the deliverer's settings). SMTP credentials come from
//! `TRACKER_SMTP_USER` / `TRACKER_SMTP_PASSWORD` only: argv is visible to
//! every user of the machine, and neither is ever printed.

use std::path::PathBuf;

use clap::Args;
use portal_api::{DelivererConfig, NotifyKey, SmtpChannel, SmtpSettings};

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
}

/// What `serve` needs to deliver e-mails.
#[derive(Debug)]
pub(crate) struct Notify {
    pub(crate) key: NotifyKey,
    pub(crate) channel: SmtpChannel,
    pub(crate) config: DelivererConfig,
    pub(crate) contact: String,
}

impl NotifyArgs {
    /// The e-mail settings, or `None` without `--smtp`; bad flags are bad input.
    pub(crate) fn prepare(
        &self,
        store_url: &str,
        public_url: &str,
    ) -> anyhow::Result<Option<Notify>> {
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
        let mut config = DelivererConfig::recommended(public_url);
        for (flag, value) in [
            ("--notify-retry-for-s", self.notify_retry_for_s),
            ("--notify-lease-s", self.notify_lease_s),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(bad_input(format!(
                    "{flag} {value}: must be a positive number"
                )));
            }
        }
        config.retry_for =
            chrono::Duration::milliseconds((self.notify_retry_for_s * 1000.0) as i64);
        config.lease = chrono::Duration::milliseconds((self.notify_lease_s * 1000.0) as i64);
        config
            .validate()
            .map_err(|e| bad_input(format!("--notify-lease-s / --notify-retry-for-s: {e}")))?;
        let channel = SmtpChannel::new(&settings, config.smtp_timeout())
            .map_err(|e| bad_input(format!("--smtp: {e}")))?;
        let key_file = match (&self.notify_key_file, store_url.strip_prefix("sqlite://")) {
            (Some(path), _) => path.clone(),
            (None, Some(db)) => PathBuf::from(format!("{db}.notify-key")),
            (None, None) => {
                return Err(bad_input("--smtp needs --notify-key-file with this store"));
            }
        };
        // A key file that cannot be read or made is the environment's fault
        // (exit 1), with the reason.
        let key = NotifyKey::load_or_create(&key_file)?;
        let contact = self
            .mail_contact
            .clone()
            .unwrap_or_else(|| settings.mail_from.email.to_string());
        config.contact = contact.clone();
        Ok(Some(Notify {
            key,
            channel,
            config,
            contact,
        }))
    }
}
