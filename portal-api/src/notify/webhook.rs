//! Webhooks: a tenant's endpoints, the Standard Webhooks signature of each
//! delivery, the payloads, and the guard against server-side request forgery.
//!
//! **Signing** (<https://www.standardwebhooks.com>): a secret is `whsec_` and
//! the base64 of 32 random bytes; a delivery carries `webhook-id` (the
//! message's id, derived from its idempotency key: the same on every retry
//! and replay), `webhook-timestamp` (unix seconds of the attempt) and
//! `webhook-signature`: `v1,` and the base64 HMAC-SHA256, under the decoded
//! secret, of `{id}.{timestamp}.{body}`. While a rotated-out secret is in its
//! grace period, the header carries both signatures, space separated.
//!
//! **Payloads** are versioned JSON, built when the message is made (so every
//! retry sends the same bytes): `{"type": "order.status_changed", "version":
//! 1, "timestamp": …, "data": {…}}`.
//!
//! **SSRF**: an endpoint must be `https://` on a host whose every address is
//! public (loopback, private, link-local, unique-local, CGNAT, multicast,
//! unspecified, broadcast, documentation and IPv4-mapped/-compatible
//! addresses are refused), unless the operator allows its host with `serve
//! --webhook-allow-host HOST`, which may then be `http://` and private. The
//! check runs when the endpoint is created and again before every delivery,
//! which connects to the address just checked (pinned in the client, so a DNS
//! answer that changes in between cannot redirect it) and never follows a
//! redirect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ::hmac::{Hmac, Mac};
use chrono::{DateTime, Utc};
use rand::TryRngCore;
use sha2::Sha256;

use crate::error::{Error, Result};

/// A new endpoint's secret: `whsec_` + base64 of 32 bytes from the OS.
pub(crate) fn new_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::store_retryable(format!("the OS random generator failed: {e}")))?;
    Ok(format!("whsec_{}", data_encoding::BASE64.encode(&bytes)))
}

/// `v1,<signature>` of one message under one secret; `None` for a secret
/// that is not `whsec_` + base64.
pub(crate) fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = data_encoding::BASE64
        .decode(secret.strip_prefix("whsec_")?.as_bytes())
        .ok()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        data_encoding::BASE64.encode(&mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per secret, space separated.
pub(crate) fn signature_header(
    secrets: &[String],
    id: &str,
    timestamp: i64,
    body: &str,
) -> Option<String> {
    let signatures: Vec<String> = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Option<_>>()?;
    (!signatures.is_empty()).then(|| signatures.join(" "))
}

/// The `webhook-id` of a message: stable, from its idempotency key.
pub(crate) fn message_webhook_id(idempotency_key: &str) -> String {
    format!("msg_{}", &idempotency_key[..idempotency_key.len().min(32)])
}

/// Whether an address may be called without the operator's say-so.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and -compatible (::a.b.c.d)
            // addresses reach IPv4 hosts by another name: refused outright.
            let segments = v6.segments();
            let embeds_v4 = segments[..5].iter().all(|s| *s == 0)
                && (segments[5] == 0xffff || segments[5] == 0);
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || embeds_v4
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || (segments[0] == 0x0064 && segments[1] == 0xff9b)) // NAT64
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_unspecified()
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// An endpoint URL that passed the check, with the address to connect to.
#[derive(Debug, Clone)]
pub(crate) struct CheckedUrl {
    pub(crate) url: reqwest::Url,
    pub(crate) host: String,
    pub(crate) addr: SocketAddr,
}

/// Checks an endpoint URL against the SSRF rules (see the module), resolving
/// its host; the error says why, for a 422 naming `url`.
pub(crate) async fn check_url(
    text: &str,
    allow_hosts: &[String],
) -> std::result::Result<CheckedUrl, String> {
    if text.len() > 2000 {
        return Err("longer than 2000 characters".into());
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
    let host = url
        .host_str()
        .ok_or("needs a host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials (the signature authenticates us)".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    let allowed = allow_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host));
    match url.scheme() {
        "https" => {}
        "http" if allowed => {}
        "http" => {
            return Err(format!(
                "must be https:// (plain http only to a host the operator allows with --webhook-allow-host; `{host}` is not one)"
            ));
        }
        other => return Err(format!("must be https://, not {other}://")),
    }
    let port = url.port_or_known_default().ok_or("needs a port")?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("resolving `{host}` timed out"))?
        .map_err(|e| format!("`{host}` does not resolve: {e}"))?
        .collect(),
    };
    let Some(first) = addrs.first().copied() else {
        return Err(format!("`{host}` has no address"));
    };
    if !allowed && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(format!(
            "`{host}` resolves to {}, which is not a public address (an operator may allow the host with --webhook-allow-host)",
            bad.ip()
        ));
    }
    Ok(CheckedUrl {
        url,
        host,
        addr: first,
    })
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebhookResponse {
    /// The HTTP status, when the endpoint answered.
    pub(crate) status_code: Option<u16>,
    pub(crate) duration_ms: u64,
    /// Why it did not count as delivered (`None`: a 2xx).
    pub(crate) error: Option<String>,
}

/// Sends signed deliveries.
#[derive(Debug, Clone)]
pub struct WebhookChannel {
    allow_hosts: Vec<String>,
    timeout: Duration,
}

impl WebhookChannel {
    /// A channel that allows `allow_hosts` (`--webhook-allow-host`) and gives
    /// an endpoint `timeout` to answer.
    pub fn new(allow_hosts: Vec<String>, timeout: Duration) -> WebhookChannel {
        WebhookChannel {
            allow_hosts: allow_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            timeout,
        }
    }

    /// Posts `body` to `url` (checked again now and pinned to the checked
    /// address), signed with `secrets`.
    pub(crate) async fn send(
        &self,
        url: &str,
        id: &str,
        secrets: &[String],
        body: &str,
        now: DateTime<Utc>,
    ) -> WebhookResponse {
        let started = Instant::now();
        let failed = |error: String, started: Instant| WebhookResponse {
            status_code: None,
            duration_ms: started.elapsed().as_millis() as u64,
            error: Some(error),
        };
        let checked = match check_url(url, &self.allow_hosts).await {
            Ok(checked) => checked,
            Err(reason) => return failed(format!("refused: {reason}"), started),
        };
        let timestamp = now.timestamp();
        let Some(signature) = signature_header(secrets, id, timestamp, body) else {
            return failed("no usable signing secret".into(), started);
        };
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .resolve(&checked.host, checked.addr)
            .build()
        {
            Ok(client) => client,
            Err(e) => return failed(format!("building the HTTP client: {e}"), started),
        };
        let sent = client
            .post(checked.url)
            .header("content-type", "application/json")
            .header("user-agent", "tracker-webhooks/1")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match sent {
            Ok(response) => {
                let status = response.status();
                WebhookResponse {
                    status_code: Some(status.as_u16()),
                    duration_ms,
                    error: (!status.is_success()).then(|| {
                        if status.is_redirection() {
                            format!("HTTP {status}: redirects are not followed")
                        } else {
                            format!("HTTP {status}")
                        }
                    }),
                }
            }
            Err(e) => WebhookResponse {
                status_code: None,
                duration_ms,
                error: Some(if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                }),
            },
        }
    }
}

/// Checks the allow list's entries at start (hosts, not URLs).
pub fn validate_allow_hosts(hosts: &[String]) -> Result<()> {
    for host in hosts {
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b':');
        if !ok {
            return Err(Error::InvalidConfig {
                setting: "webhook_allow_host",
                reason: format!("`{host}`: expected a host name or an IP address"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example (its README).
    #[test]
    fn the_signature_matches_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_sign() {
        let old = new_secret().expect("secret");
        let new = new_secret().expect("secret");
        let header =
            signature_header(&[new.clone(), old.clone()], "msg_1", 10, "{}").expect("signs");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(Some(parts[0]), sign(&new, "msg_1", 10, "{}").as_deref());
        assert_eq!(Some(parts[1]), sign(&old, "msg_1", 10, "{}").as_deref());
    }

    #[test]
    fn only_public_addresses_pass() {
        for refused in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = refused.parse().expect("ip");
            assert!(!is_public(ip), "{refused} must be refused");
        }
        assert!(!is_public(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)));
        for allowed in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(allowed.parse().expect("ip")), "{allowed}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_before_anything_is_sent() {
        let none: Vec<String> = Vec::new();
        let refused = |r: std::result::Result<CheckedUrl, String>| r.expect_err("refused");
        assert!(refused(check_url("http://127.0.0.1:9/x", &none).await).contains("https://"));
        assert!(refused(check_url("https://10.0.0.1/x", &none).await).contains("10.0.0.1"));
        assert!(refused(check_url("https://[::1]/x", &none).await).contains("::1"));
        assert!(refused(check_url("https://localhost/x", &none).await).contains("not a public"));
        assert!(refused(check_url("ftp://example.com/", &none).await).contains("https://"));
        assert!(refused(check_url("https://u:p@8.8.8.8/", &none).await).contains("credentials"));
        let allowed = vec!["127.0.0.1".to_owned()];
        let ok = check_url("http://127.0.0.1:9/x", &allowed)
            .await
            .expect("allowed");
        assert_eq!(ok.addr, "127.0.0.1:9".parse().expect("addr"));
        assert!(check_url("https://8.8.8.8/hook", &none).await.is_ok());
    }
}
