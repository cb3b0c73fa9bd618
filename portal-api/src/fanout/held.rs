//! Updates a networked fan-out could not send yet. Every live message is the
//! whole current state of its kind for its order (where the truck is, the ETA,
//! the page's full view after a status move, "re-check your link"), so only the
//! newest one of each (order, kind) is worth sending later: a newer message
//! replaces the one held. That bounds what an outage can hold by the orders
//! that moved during it, whatever its length; past [`Held::capacity`] the
//! oldest are let go (their pages catch up from the store when they resync).
//!
//! Each message held gets a sequence number, so a send of what is held can
//! take a copy, go out without the lock, and then release exactly what it
//! sent: a message that replaced one of them meanwhile stays for the next
//! send.

use std::collections::{BTreeMap, HashMap};

use engine::OrderId;

use super::{LiveKind, LiveMessage};

/// The newest unsent message per (order, kind), in the order they came.
#[derive(Debug)]
pub(crate) struct Held {
    by_key: HashMap<(OrderId, LiveKind), u64>,
    by_seq: BTreeMap<u64, LiveMessage>,
    next_seq: u64,
    capacity: usize,
    /// Messages let go because the store of held ones was full.
    dropped: u64,
}

impl Held {
    pub(crate) fn new(capacity: usize) -> Held {
        Held {
            by_key: HashMap::new(),
            by_seq: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Messages let go so far because too many were held.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Holds `messages` (in order), each replacing the held message of its
    /// order and kind.
    pub(crate) fn hold(&mut self, messages: impl IntoIterator<Item = LiveMessage>) {
        for message in messages {
            if message.kind == LiveKind::Resync {
                // A node's own instruction to its viewers: never sent on.
                continue;
            }
            let key = (message.order_id.clone(), message.kind);
            if let Some(old) = self.by_key.remove(&key) {
                self.by_seq.remove(&old);
            }
            while self.by_seq.len() >= self.capacity {
                let Some((_, oldest)) = self.by_seq.pop_first() else {
                    break;
                };
                self.by_key.remove(&(oldest.order_id, oldest.kind));
                self.dropped += 1;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.by_key.insert(key, seq);
            self.by_seq.insert(seq, message);
        }
    }

    /// A copy of what is held, oldest first, with the sequence number to
    /// [`Held::release`] once it is sent.
    pub(crate) fn copy(&self) -> (Vec<LiveMessage>, u64) {
        (self.by_seq.values().cloned().collect(), self.next_seq)
    }

    /// Lets go of every message held before `upto` (a [`Held::copy`]'s
    /// number): they were sent. Messages held since stay.
    pub(crate) fn release(&mut self, upto: u64) {
        let kept = self.by_seq.split_off(&upto);
        for message in std::mem::replace(&mut self.by_seq, kept).into_values() {
            self.by_key.remove(&(message.order_id, message.kind));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(order: &str, kind: LiveKind, text: &str) -> LiveMessage {
        LiveMessage::new(OrderId(order.into()), kind, text.to_owned())
    }

    fn texts(held: &Held) -> Vec<String> {
        held.copy().0.iter().map(|m| m.text.to_string()).collect()
    }

    #[test]
    fn only_the_newest_of_each_order_and_kind_is_held() {
        let mut held = Held::new(100);
        held.hold([
            message("a", LiveKind::Position, "a at 1"),
            message("a", LiveKind::Eta, "a eta 1"),
            message("b", LiveKind::Position, "b at 1"),
            message("a", LiveKind::Position, "a at 2"),
            message("a", LiveKind::Status, "a delivered"),
        ]);
        assert_eq!(held.len(), 4);
        // In the order the survivors came: a's newer position after b's.
        assert_eq!(texts(&held), ["a eta 1", "b at 1", "a at 2", "a delivered"]);
    }

    #[test]
    fn a_node_local_resync_is_never_held() {
        let mut held = Held::new(10);
        held.hold([message("", LiveKind::Resync, "")]);
        assert!(held.is_empty());
    }

    #[test]
    fn past_capacity_the_oldest_are_let_go_and_counted() {
        let mut held = Held::new(2);
        held.hold([
            message("a", LiveKind::Position, "a"),
            message("b", LiveKind::Position, "b"),
            message("c", LiveKind::Position, "c"),
        ]);
        assert_eq!(texts(&held), ["b", "c"]);
        assert_eq!(held.dropped(), 1);
        // Replacing one held does not count as letting one go.
        held.hold([message("b", LiveKind::Position, "b2")]);
        assert_eq!(texts(&held), ["c", "b2"]);
        assert_eq!(held.dropped(), 1);
    }

    #[test]
    fn releasing_a_sent_copy_keeps_what_replaced_it_meanwhile() {
        let mut held = Held::new(10);
        held.hold([
            message("a", LiveKind::Position, "a at 1"),
            message("b", LiveKind::Position, "b at 1"),
        ]);
        let (sent, upto) = held.copy();
        assert_eq!(sent.len(), 2);
        // While the copy is on its way, a newer position of a comes.
        held.hold([message("a", LiveKind::Position, "a at 2")]);
        held.release(upto);
        assert_eq!(texts(&held), ["a at 2"]);
        held.release(held.copy().1);
        assert!(held.is_empty());
        // The keys went with the messages: holding again starts afresh.
        held.hold([message("a", LiveKind::Position, "a at 3")]);
        assert_eq!(held.len(), 1);
    }
}
