//! Topic creation through the Kafka admin API (tansu and Kafka both support
//! CreateTopics); an existing topic is fine.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{Error, Result};

/// Creates each `(topic, partitions)` that does not exist yet.
pub async fn ensure_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    ensure_topics_with(brokers, &[], topics).await
}

/// [`ensure_topics`] with extra librdkafka settings (TLS, SASL), applied last.
pub async fn ensure_topics_with(
    brokers: &str,
    overrides: &[(String, String)],
    topics: &[(&str, i32)],
) -> Result<()> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in overrides {
        config.set(key, value);
    }
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(new_topics.iter(), &options).await?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
