//! The bus that carries positions from their entry points (HTTP, simulator,
//! vendors) to the pipeline, chosen by URL: `memory://` (in-process, the embedded
//! default) or `kafka://HOST:PORT[,HOST:PORT…][/TOPIC]`.

pub(crate) mod memory;

use engine::Position;

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
}

/// A parsed `--bus` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusUrl {
    /// The in-process bus.
    Memory,
    /// A Kafka cluster: bootstrap servers (comma-separated `HOST:PORT`) and the
    /// positions topic (default `positions`).
    Kafka { brokers: String, topic: String },
}

/// The default positions topic.
pub const DEFAULT_TOPIC: &str = "positions";

impl BusUrl {
    /// Parses `memory://` or `kafka://HOST:PORT[,HOST:PORT…][/TOPIC]`.
    pub fn parse(url: &str) -> Result<BusUrl> {
        let bad = |reason: &str| Error::BusUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url == "memory://" || url == "memory" {
            return Ok(BusUrl::Memory);
        }
        let Some(rest) = url.strip_prefix("kafka://") else {
            return Err(bad("expected memory:// or kafka://HOST:PORT[/TOPIC]"));
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
                topic: "positions".into()
            })
        );
        assert_eq!(
            BusUrl::parse("kafka://a:1,b:2/fleet.positions").ok(),
            Some(BusUrl::Kafka {
                brokers: "a:1,b:2".into(),
                topic: "fleet.positions".into()
            })
        );
        assert!(BusUrl::parse("kafka://").is_err());
        assert!(BusUrl::parse("kafka://host").is_err());
        assert!(BusUrl::parse("kafka://h:1/bad topic").is_err());
        assert!(BusUrl::parse("redis://h:1").is_err());
    }
}
