//! The bus that carries positions from their entry points (HTTP, simulator,
//! vendors) to the pipeline, chosen by URL: `memory://` (in-process, the embedded
//! default) or `kafka://HOST:PORT[,HOST:PORT…][/TOPIC][?tenant=ID]`.

pub(crate) mod memory;

use engine::{Position, TenantId};

use crate::kafka::KafkaPublisher;
use crate::{Error, Result};

/// The publishing side of whichever bus `--bus` chose, for the entry points
/// (the HTTP handler, the demo fleet): `publish` returns once the positions are
/// durable (in the sink for `memory://`, acknowledged by the brokers for Kafka).
#[derive(Debug, Clone)]
pub enum BusPublisher {
    Memory(memory::MemoryPublisher),
    Kafka(KafkaPublisher),
}

impl BusPublisher {
    pub async fn publish(&self, positions: Vec<Position>) -> Result<()> {
        match self {
            BusPublisher::Memory(bus) => bus.publish(positions).await,
            BusPublisher::Kafka(producer) => producer.publish(&positions).await,
        }
    }

    /// Whether the bus answers (a readiness check): the in-process bus's
    /// consumer still runs; the Kafka brokers return the topic's metadata.
    pub async fn check(&self) -> Result<()> {
        match self {
            BusPublisher::Memory(bus) => bus.check(),
            BusPublisher::Kafka(producer) => producer.check().await,
        }
    }
}

/// A parsed `--bus` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusUrl {
    /// The in-process bus.
    Memory,
    /// A Kafka cluster: bootstrap servers (comma-separated `HOST:PORT`), the
    /// positions topic (default `positions`) and the tenant the topic is bound
    /// to, if any (its messages then need not, and may not, name another).
    Kafka {
        brokers: String,
        topic: String,
        tenant: Option<TenantId>,
    },
}

/// The default positions topic.
pub const DEFAULT_TOPIC: &str = "positions";

impl BusUrl {
    /// Parses `memory://` or `kafka://HOST:PORT[,HOST:PORT…][/TOPIC][?tenant=ID]`.
    pub fn parse(url: &str) -> Result<BusUrl> {
        let bad = |reason: &str| Error::BusUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url == "memory://" || url == "memory" {
            return Ok(BusUrl::Memory);
        }
        let Some(rest) = url.strip_prefix("kafka://") else {
            return Err(bad(
                "expected memory:// or kafka://HOST:PORT[/TOPIC][?tenant=ID]",
            ));
        };
        let (rest, tenant) = match rest.split_once('?') {
            None => (rest, None),
            Some((rest, query)) => {
                let mut tenant = None;
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    match pair.split_once('=') {
                        Some(("tenant", id))
                            if !id.is_empty()
                                && id.chars().all(|c| {
                                    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
                                }) =>
                        {
                            tenant = Some(TenantId(id.to_owned()));
                        }
                        Some(("tenant", id)) => {
                            return Err(bad(&format!("`{id}` is not a tenant id")));
                        }
                        _ => {
                            return Err(bad(&format!(
                                "unknown parameter `{pair}` (expected tenant=ID)"
                            )));
                        }
                    }
                }
                (rest, tenant)
            }
        };
        let (brokers, topic) = match rest.split_once('/') {
            Some((brokers, "")) => (brokers, DEFAULT_TOPIC),
            Some((brokers, topic)) => (brokers, topic),
            None => (rest, DEFAULT_TOPIC),
        };
        if brokers.is_empty() {
            return Err(bad("no broker address"));
        }
        for broker in brokers.split(',') {
            let valid = broker
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(bad(&format!("`{broker}` is not HOST:PORT")));
            }
        }
        let topic_ok = topic.len() <= 249
            && topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !topic_ok {
            return Err(bad(&format!("`{topic}` is not a valid Kafka topic name")));
        }
        Ok(BusUrl::Kafka {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_urls() {
        assert_eq!(BusUrl::parse("memory://").ok(), Some(BusUrl::Memory));
        assert_eq!(
            BusUrl::parse("kafka://127.0.0.1:9092").ok(),
            Some(BusUrl::Kafka {
                brokers: "127.0.0.1:9092".into(),
                topic: "positions".into(),
                tenant: None,
            })
        );
        assert_eq!(
            BusUrl::parse("kafka://a:1,b:2/fleet.positions").ok(),
            Some(BusUrl::Kafka {
                brokers: "a:1,b:2".into(),
                topic: "fleet.positions".into(),
                tenant: None,
            })
        );
        assert_eq!(
            BusUrl::parse("kafka://a:1/acme.positions?tenant=ten_7").ok(),
            Some(BusUrl::Kafka {
                brokers: "a:1".into(),
                topic: "acme.positions".into(),
                tenant: Some(TenantId("ten_7".into())),
            })
        );
        assert!(BusUrl::parse("kafka://a:1/t?tenant=").is_err());
        assert!(BusUrl::parse("kafka://a:1/t?tenant=a/b").is_err());
        assert!(BusUrl::parse("kafka://a:1/t?group=x").is_err());
        assert!(BusUrl::parse("kafka://").is_err());
        assert!(BusUrl::parse("kafka://host").is_err());
        assert!(BusUrl::parse("kafka://h:1/bad topic").is_err());
        assert!(BusUrl::parse("redis://h:1").is_err());
    }
}
