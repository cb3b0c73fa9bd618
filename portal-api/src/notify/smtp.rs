//! The e-mail channel: SMTP through `lettre` (tokio, rustls).
//!
//! `--smtp smtp://HOST:PORT` talks plain SMTP (a local relay);
//! `smtp://HOST:PORT?tls=starttls` requires STARTTLS before anything is sent;
//! `smtps://HOST:PORT` is TLS from the first byte. Credentials come from the
//! environment (`TRACKER_SMTP_USER`, `TRACKER_SMTP_PASSWORD`), never from the
//! URL (argv is visible to every user of the machine) and are never logged.
//! A failure is classified for the deliverer: a 5xx answer is permanent, a
//! 4xx answer and everything before an answer (refused connection, timeout,
//! TLS) is worth retrying.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, header::Header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::RenderedMessage;
use crate::error::{Error, Result};

/// The SMTP settings, from `--smtp`, `--mail-from` and the environment.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, String)>,
    pub mail_from: Mailbox,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Implicit,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("mail_from", &self.mail_from.to_string())
            .finish()
    }
}

impl SmtpSettings {
    /// Parses `--smtp URL` and `--mail-from "Name <addr>"`; `credentials`
    /// come from the environment. Errors name the setting.
    pub fn parse(
        url: &str,
        mail_from: &str,
        credentials: Option<(String, String)>,
    ) -> Result<SmtpSettings> {
        let bad = |reason: String| Error::InvalidConfig {
            setting: "smtp",
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad(format!(
                "`{url}`: expected smtp://HOST:PORT or smtps://HOST:PORT"
            ))
        })?;
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a.trim_end_matches('/'), Some(q)),
            None => (rest.trim_end_matches('/'), None),
        };
        if authority.contains('@') {
            return Err(bad(
                "credentials do not belong in the URL (argv is visible to every user); \
                 set TRACKER_SMTP_USER and TRACKER_SMTP_PASSWORD"
                    .into(),
            ));
        }
        let (mut tls, default_port) = match scheme {
            "smtp" => (SmtpTls::None, 25),
            "smtps" => (SmtpTls::Implicit, 465),
            other => {
                return Err(bad(format!(
                    "unknown scheme `{other}`; expected smtp or smtps"
                )));
            }
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            match pair {
                "tls=starttls" if scheme == "smtp" => tls = SmtpTls::StartTls,
                "tls=none" if scheme == "smtp" => tls = SmtpTls::None,
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}`; smtp:// takes tls=starttls"
                    )));
                }
            }
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| bad(format!("`{port}` is not a port")))?,
            ),
            None => (authority, default_port),
        };
        if host.is_empty() {
            return Err(bad(format!("`{url}` names no host")));
        }
        let mail_from: Mailbox = mail_from.parse().map_err(|e| Error::InvalidConfig {
            setting: "mail_from",
            reason: format!("`{mail_from}` is not a mailbox (\"Name <addr@example.com>\"): {e}"),
        })?;
        Ok(SmtpSettings {
            host: host.to_owned(),
            port,
            tls,
            credentials,
            mail_from,
        })
    }
}

/// A failed hand-over, with whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SendError {
    pub(crate) retryable: bool,
    pub(crate) detail: String,
}

/// The e-mail channel.
#[derive(Clone)]
pub struct SmtpChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    mail_from: Mailbox,
}

impl fmt::Debug for SmtpChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpChannel")
            .field("mail_from", &self.mail_from.to_string())
            .finish_non_exhaustive()
    }
}

/// `List-Unsubscribe: <URL>` (RFC 2369).
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

impl SmtpChannel {
    /// A channel whose every SMTP command must be answered within `timeout`
    /// (the deliverer keeps it under its claim lease).
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> Result<SmtpChannel> {
        let tls_parameters = || {
            TlsParameters::new(settings.host.clone()).map_err(|e| Error::InvalidConfig {
                setting: "smtp",
                reason: format!("TLS for {}: {e}", settings.host),
            })
        };
        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
                .port(settings.port)
                .tls(tls)
                .timeout(Some(timeout));
        if let Some((user, password)) = &settings.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(SmtpChannel {
            transport: builder.build(),
            mail_from: settings.mail_from.clone(),
        })
    }

    /// The domain of the sender address (the right side of Message-IDs).
    pub(crate) fn domain(&self) -> String {
        self.mail_from.email.domain().to_owned()
    }

    /// The sender's address, the default contact in messages.
    pub(crate) fn sender_address(&self) -> String {
        self.mail_from.email.to_string()
    }

    /// Sends one message to `recipient`.
    pub(crate) async fn send(
        &self,
        recipient: &str,
        message_id: String,
        unsubscribe_url: &str,
        message: &RenderedMessage,
    ) -> std::result::Result<(), SendError> {
        let permanent = |detail: String| SendError {
            retryable: false,
            detail,
        };
        let to: Mailbox = recipient
            .parse()
            .map_err(|e| permanent(format!("`{recipient}` is not a mailbox: {e}")))?;
        let email = Message::builder()
            .from(self.mail_from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(message_id))
            .header(ListUnsubscribe(format!("<{unsubscribe_url}>")))
            .header(ListUnsubscribePost)
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|e| permanent(format!("building the message: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(err) => Err(SendError {
                retryable: !err.is_permanent(),
                detail: err.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<SmtpSettings> {
        SmtpSettings::parse(url, "Acme Freight <noreply@acme.test>", None)
    }

    #[test]
    fn the_url_says_how_the_connection_is_protected() {
        let plain = parse("smtp://127.0.0.1:2525").expect("plain");
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("127.0.0.1", 2525, SmtpTls::None)
        );
        assert_eq!(
            parse("smtp://mx.test:587?tls=starttls")
                .expect("starttls")
                .tls,
            SmtpTls::StartTls
        );
        let implicit = parse("smtps://mx.test").expect("smtps");
        assert_eq!((implicit.port, implicit.tls), (465, SmtpTls::Implicit));
    }

    #[test]
    fn credentials_in_the_url_and_junk_are_refused_by_name() {
        let err = parse("smtp://user:secret@mx.test:25").expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("TRACKER_SMTP_USER") && !text.contains("secret"),
            "{text}"
        );
        assert!(parse("http://mx.test").is_err());
        assert!(parse("smtp://mx.test:notaport").is_err());
        assert!(parse("smtp://mx.test?tls=maybe").is_err());
        let err = SmtpSettings::parse("smtp://mx.test", "nobody", None).expect_err("bad from");
        assert!(err.to_string().contains("mail_from"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let settings = SmtpSettings::parse(
            "smtp://mx.test",
            "a@b.test",
            Some(("user".into(), "hunter2".into())),
        )
        .expect("parses");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
