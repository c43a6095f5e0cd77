//! Drives the record policy (`kolokol_core::policy::RecordPolicy`, the same state machine the simulator measures).
//! The connections report what happens to records (a peer connected or left, records arrived and what validation and
//! admission made of them, a peer announced or asked for records, a reconciliation found differences) and so does
//! publishing (a publication held back or released); this module feeds those events to the policy and turns its
//! decisions into wire messages. Which records to relay and to whom, what to serve, what to fetch, when to
//! reconcile and who misbehaves are decided there, not here.
//!
//! Lock order: the policy lock is never held while the peer registry or the catalog is locked, nor the other way
//! round ([`feed`] returns the decisions with the policy unlocked).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::{
    InEvent, Misbehaviour, OutEvent, PolicyConfig, PolicyConfigError, RecordPolicy,
};
use kolokol_core::record::RecordId;
use kolokol_wire::Message;
use kolokol_wire::message::MAX_FETCH_IDS;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::node::Inner;

/// The record policy of this node.
pub(crate) type Policy = RecordPolicy<NodeId, StdRng>;

/// The longest the timer task sleeps without looking at the policy again.
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(30);

/// The node's policy: `push_fanout` peers learn of each new record (whole when published here, by id when relayed),
/// a reconciliation starts about every `reconcile_interval`, and a peer is cut off after `max_bad_records` invalid
/// records.
pub(crate) fn new_policy(
    push_fanout: usize,
    reconcile_interval: Duration,
    max_bad_records: u32,
) -> Result<Policy, PolicyConfigError> {
    let config = PolicyConfig {
        eager_fanout: 0,
        announce_fanout: push_fanout,
        reconcile_interval,
        max_bad_records,
        ..PolicyConfig::default()
    };
    RecordPolicy::new(config, StdRng::seed_from_u64(rand::random()))
}

/// Feeds one event to the policy at the node's current time and returns its decisions.
pub(crate) fn feed(inner: &Inner, event: InEvent<NodeId>) -> Vec<OutEvent<NodeId>> {
    let now = inner.elapsed();
    inner.peers.policy().handle(event, now)
}

/// What the connection with `current` must do itself after [`carry_out`].
#[derive(Default)]
pub(crate) struct OwnPart {
    /// Messages to write to that peer now (answers go out in order, not through the bounded outbox).
    pub messages: Vec<Message>,
    /// The policy asks to cut that peer off.
    pub disconnect: Option<Misbehaviour>,
}

/// Messages to one peer, merged so that one batch of decisions makes one message of each kind.
#[derive(Default)]
struct Batch {
    records: Vec<RecordId>,
    have: Vec<RecordId>,
    fetch: Vec<RecordId>,
}

/// Carries out the policy's decisions. Messages to other peers go through their outboxes (best effort: a full outbox
/// drops them, and reconciliation repairs what a lost push misses); those to `current` are returned for its
/// connection to write.
pub(crate) fn carry_out(
    inner: &Inner,
    current: Option<&NodeId>,
    decisions: Vec<OutEvent<NodeId>>,
) -> OwnPart {
    let mut own = OwnPart::default();
    let mut batches: BTreeMap<NodeId, Batch> = BTreeMap::new();
    for decision in decisions {
        match decision {
            OutEvent::SendRecord { to, id } => batches.entry(to).or_default().records.push(id),
            OutEvent::SendRecords { to, ids } => batches.entry(to).or_default().records.extend(ids),
            OutEvent::Announce { to, id } => batches.entry(to).or_default().have.push(id),
            OutEvent::Request { from, id } => batches.entry(from).or_default().fetch.push(id),
            OutEvent::StartReconcile { peer } => {
                if !inner.peers.reconcile_with(&peer) {
                    let more = feed(inner, InEvent::ReconcileEnded { peer });
                    carry_out(inner, None, more);
                }
            }
            OutEvent::Disconnect { peer, reason } => {
                if current == Some(&peer) {
                    own.disconnect = Some(reason);
                } else {
                    inner.peers.cut_off(&peer, inner.elapsed());
                }
            }
            OutEvent::ScheduleTimer { .. } => inner.peers.policy_wake.notify_one(),
        }
    }
    for (peer, batch) in batches {
        let messages = messages_of(inner, batch);
        if current == Some(&peer) {
            own.messages.extend(messages);
        } else {
            for message in messages {
                inner.peers.send_to(&peer, message);
            }
        }
    }
    own
}

fn messages_of(inner: &Inner, batch: Batch) -> Vec<Message> {
    let mut messages = Vec::new();
    if !batch.records.is_empty() {
        match inner.catalog().record_bytes(&batch.records) {
            Ok(found) => {
                match kolokol_wire::pack_records(found, inner.wire_config.max_message_bytes) {
                    Ok(packed) => messages.extend(packed),
                    Err(error) => tracing::warn!(%error, "cannot pack records for a peer"),
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read records to send"),
        }
    }
    for ids in batch.have.chunks(MAX_FETCH_IDS) {
        messages.push(Message::Have { ids: ids.to_vec() });
    }
    for ids in batch.fetch.chunks(MAX_FETCH_IDS) {
        messages.push(Message::Fetch { ids: ids.to_vec() });
    }
    messages
}

/// Wakes the policy when it asked to be (request time-outs, the periodic reconciliation) and carries out what it
/// decides then.
pub(crate) fn spawn_timer(inner: Arc<Inner>) {
    tokio::spawn(async move {
        loop {
            let now = inner.elapsed();
            let wakeup = inner.peers.policy().poll_timeout();
            let sleep = wakeup
                .map_or(MAX_TIMER_SLEEP, |at| at.saturating_sub(now))
                .min(MAX_TIMER_SLEEP);
            tokio::select! {
                _ = inner.cancel.cancelled() => return,
                // A new wake-up time: look again.
                _ = inner.peers.policy_wake.notified() => continue,
                _ = tokio::time::sleep(sleep) => {}
            }
            let decisions = feed(&inner, InEvent::Tick);
            carry_out(&inner, None, decisions);
        }
    });
}
