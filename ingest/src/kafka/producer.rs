//! Publishing to Kafka: canonical positions keyed `TENANT/VEHICLE` (the simulator,
//! and HTTP ingest in a distributed deployment), raw vendor messages (tests and
//! replays), and dead letters. Every publish waits for the broker's
//! acknowledgement (`acks=all`) so "published" means durable.

use std::collections::VecDeque;
use std::time::Duration;

use engine::Position;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::settings::{ClientTuning, producer_config};
use crate::{Error, Result};
use engine::{FORMAT_HEADER, Format, encode_canonical};

/// One outgoing message.
#[derive(Debug, Clone)]
pub struct OutRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: Vec<(&'a str, &'a [u8])>,
}

/// A producer bound to one topic. Cheap to clone (the client is shared).
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// A producer for `topic` on `brokers`; `overrides` are extra librdkafka
    /// settings applied last.
    pub fn new(
        brokers: &str,
        topic: &str,
        tuning: ClientTuning,
        overrides: &[(String, String)],
    ) -> Result<KafkaPublisher> {
        let producer: FutureProducer = producer_config(brokers, tuning, overrides).create()?;
        Ok(KafkaPublisher {
            producer,
            topic: topic.to_owned(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Asks the brokers for the topic's metadata (within two seconds): whether
    /// the cluster answers, for a readiness check.
    pub async fn check(&self) -> Result<()> {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(2))
                .map(|_| ())
                .map_err(Error::from)
        })
        .await
        // Only a panic in the metadata call fails the join.
        .map_err(|_| Error::Kafka(KafkaError::MetadataFetch(RDKafkaErrorCode::Fail)))?
    }

    /// Publishes positions as canonical JSON (carrying `tenant_id`) keyed
    /// `TENANT/VEHICLE`, and waits for the broker to acknowledge all of them.
    pub async fn publish(&self, positions: &[Position]) -> Result<()> {
        let payloads: Vec<Vec<u8>> = positions.iter().map(encode_canonical).collect();
        let keys: Vec<String> = positions.iter().map(|p| p.key().wire_key()).collect();
        let records: Vec<OutRecord<'_>> = positions
            .iter()
            .zip(&payloads)
            .zip(&keys)
            .map(|((_, payload), key)| OutRecord {
                key: Some(key.as_bytes()),
                payload,
                headers: vec![(FORMAT_HEADER, Format::Canonical.as_str().as_bytes())],
            })
            .collect();
        self.send_all(&records).await
    }

    /// Publishes records and waits for every acknowledgement; the first
    /// failure, if any, is the error. When librdkafka's local queue is full,
    /// waits for the oldest delivery instead of failing.
    pub async fn send_all(&self, records: &[OutRecord<'_>]) -> Result<()> {
        self.send_each(records).await.into_iter().collect()
    }

    /// Publishes records and waits for every acknowledgement, reporting each
    /// record's outcome (in order) instead of stopping at the first failure,
    /// so a caller can retry only the ones that failed.
    pub async fn send_each(&self, records: &[OutRecord<'_>]) -> Vec<Result<()>> {
        let mut outcomes: Vec<Option<Result<()>>> = Vec::with_capacity(records.len());
        let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::new();
        for (idx, record) in records.iter().enumerate() {
            outcomes.push(None);
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: Some(*value),
                });
            }
            let mut out = FutureRecord::to(self.topic.as_str())
                .payload(record.payload)
                .headers(headers);
            if let Some(key) = record.key {
                out = out.key(key);
            }
            loop {
                match self.producer.send_result(out) {
                    Ok(delivery) => {
                        pending.push_back((idx, delivery));
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        out = back;
                        match pending.pop_front() {
                            Some((at, oldest)) => outcomes[at] = Some(check(oldest.await)),
                            None => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    // Refused locally (too large, unknown topic): this record
                    // failed; the others go on.
                    Err((err, _)) => {
                        outcomes[idx] = Some(Err(err.into()));
                        break;
                    }
                }
            }
        }
        for (at, delivery) in pending {
            outcomes[at] = Some(check(delivery.await));
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Err(Error::Kafka(KafkaError::Canceled))))
            .collect()
    }

    /// Waits until everything queued is delivered (at most `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer.flush(timeout)?;
        Ok(())
    }
}

type Delivered = <DeliveryFuture as std::future::Future>::Output;

fn check(delivered: Delivered) -> Result<()> {
    match delivered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((err, _))) => Err(Error::Kafka(err)),
        Err(_) => Err(Error::Kafka(KafkaError::Canceled)),
    }
}
