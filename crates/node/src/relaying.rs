//! Carrying out the record policy's decisions (`crate::record_policy`): records to send, ids to announce (`have`)
//! and to fetch become wire messages, merged so that one batch of decisions makes one message of each kind per peer;
//! a reconciliation to start goes to that peer's connection; a peer to cut off is banned. And the timer task that
//! wakes the policy when it asked to be (request time-outs, the periodic reconciliation).
//!
//! The policy decides; this module only moves bytes. Its lock is taken only inside `RecordPolicyOwner`'s methods,
//! never across an `.await` here nor while the peers or the catalog are locked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::{InEvent, Misbehaviour, OutEvent};
use kolokol_core::record::RecordId;
use kolokol_wire::Message;
use kolokol_wire::WireConfig;
use kolokol_wire::message::MAX_FETCH_IDS;

use crate::catalog::CatalogService;
use crate::peers::PeerRegistry;
use crate::record_policy::RecordPolicyOwner;
use crate::tasks::Tasks;

/// What carrying out the record policy's decisions uses: the policy, the peers to write to, the catalog records are
/// read from. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Relayer {
    pub tasks: Tasks,
    pub catalog: Arc<CatalogService>,
    pub peers: Arc<PeerRegistry>,
    pub policy: Arc<RecordPolicyOwner>,
    pub wire_config: WireConfig,
    /// When the node started: the policy's clock.
    pub started: Instant,
}

/// The longest the timer task sleeps without looking at the policy again.
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(30);

/// Feed events to the policy at the node's current time and return its decisions.
pub(crate) fn feed(
    relayer: &Relayer,
    events: impl IntoIterator<Item = InEvent<NodeId>>,
) -> Vec<OutEvent<NodeId>> {
    relayer.policy.handle(events, relayer.started.elapsed())
}

/// What the connection with the current peer must do itself after [`carry_out`].
#[derive(Default)]
pub(crate) struct OwnPart {
    /// Messages to write to that peer now (answers go out in order, not through the bounded outbox).
    pub messages: Vec<Message>,
    /// The policy asks to cut that peer off.
    pub disconnect: Option<Misbehaviour>,
}

/// Messages to one peer, merged.
#[derive(Default)]
struct Batch {
    records: Vec<RecordId>,
    have: Vec<RecordId>,
    fetch: Vec<RecordId>,
}

/// Carry out the policy's decisions. Messages to other peers go through their outboxes (best effort: a full outbox
/// drops them, and reconciliation repairs what a lost push misses); those to `current` are returned for its
/// connection to write in order.
pub(crate) async fn carry_out(
    relayer: &Relayer,
    current: Option<&NodeId>,
    decisions: Vec<OutEvent<NodeId>>,
) -> OwnPart {
    let mut own = OwnPart::default();
    let mut batches: BTreeMap<NodeId, Batch> = BTreeMap::new();
    let mut queue = decisions;
    while !queue.is_empty() {
        let mut more = Vec::new();
        for decision in queue {
            match decision {
                OutEvent::SendRecord { to, id } => batches.entry(to).or_default().records.push(id),
                OutEvent::SendRecords { to, ids } => {
                    batches.entry(to).or_default().records.extend(ids)
                }
                OutEvent::Announce { to, id } => batches.entry(to).or_default().have.push(id),
                OutEvent::Request { from, id } => batches.entry(from).or_default().fetch.push(id),
                OutEvent::StartReconcile { peer } => {
                    // Gone meanwhile: the policy may pick another.
                    if !relayer.peers.reconcile_with(&peer) {
                        more.extend(feed(relayer, [InEvent::ReconcileEnded { peer }]));
                    }
                }
                OutEvent::Disconnect { peer, reason } => {
                    if current == Some(&peer) {
                        own.disconnect = Some(reason);
                    } else {
                        relayer.peers.cut_off(&peer, relayer.started.elapsed());
                    }
                }
                OutEvent::ScheduleTimer { .. } => relayer.policy.wake_timer(),
            }
        }
        queue = more;
    }
    for (peer, batch) in batches {
        let messages = messages_of(relayer, batch).await;
        if current == Some(&peer) {
            own.messages.extend(messages);
        } else {
            for message in messages {
                relayer.peers.send_to(&peer, message);
            }
        }
    }
    own
}

async fn messages_of(relayer: &Relayer, batch: Batch) -> Vec<Message> {
    let mut messages = Vec::new();
    if !batch.records.is_empty() {
        let ids = batch.records;
        match relayer.catalog.run(move |c| c.record_bytes(&ids)).await {
            Ok(found) => {
                match kolokol_wire::pack_records(found, relayer.wire_config.max_message_bytes) {
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

/// Feed events and carry out what the policy decides, for callers that are not a connection (publishing, the
/// timer, a connection's start and end).
pub(crate) async fn report(relayer: &Relayer, events: impl IntoIterator<Item = InEvent<NodeId>>) {
    let decisions = feed(relayer, events);
    carry_out(relayer, None, decisions).await;
}

/// Wake the policy when it asked to be and carry out what it decides then.
pub(crate) fn spawn_timer(relayer: Relayer) {
    let tasks = relayer.tasks.clone();
    tasks.spawn("record policy timer", async move {
        loop {
            let now = relayer.started.elapsed();
            let sleep = relayer
                .policy
                .next_wakeup()
                .map_or(MAX_TIMER_SLEEP, |at| at.saturating_sub(now))
                .min(MAX_TIMER_SLEEP);
            tokio::select! {
                _ = relayer.tasks.cancelled() => return,
                // A new wake-up time: look again.
                _ = relayer.policy.timer_woken() => continue,
                _ = tokio::time::sleep(sleep) => {}
            }
            report(&relayer, [InEvent::Tick]).await;
        }
    });
}
