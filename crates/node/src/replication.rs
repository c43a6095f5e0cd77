//! Content outlives its publisher (design decision 5): publisher push and replica bookkeeping.
//!
//! After a publish, the record is *held back*: it is not offered by reconciliation, fetch or author requests, its feed
//! head is not put and its torrent not announced. Connected peers are asked (`Replicate`) to fetch and seed it; when
//! the first one reports (`Holding`) that it has every piece, or when the announce time-out passes, the publication is
//! announced. The decisions live in `kolokol_core::replication::push`; this module carries them out.
//!
//! Every node tells its connected peers which publications it holds complete (`Holding`, on connect and after each
//! finished download), so a node knows how many known peers hold a full copy of each publication.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::InEvent;
use kolokol_core::record::{InfoHash, RecordId, SignedRecord, ValidationContext, validate_record};
use kolokol_core::replication::push::{PublisherPush, PushAction, PushConfig};
use kolokol_store::TorrentState;
use kolokol_wire::Message;
use kolokol_wire::message::MAX_HOLDING;
use tokio::sync::mpsc;

use crate::config::ReplicationConfig;
use crate::error::ApiError;
use crate::node::{Inner, unix_now};

/// Publications whose holders are remembered (beyond it, new ones are not tracked).
const MAX_TRACKED: usize = 100_000;
/// Holders remembered per publication.
const MAX_HOLDERS: usize = 64;
/// Replications this node runs at once for other publishers.
const MAX_REPLICATING: usize = 4;
/// Complete publications listed to a peer right after connecting (the newest ones).
const HOLDING_ON_CONNECT: usize = 1024;
/// Settings key of the publications still held back, so that a restart resumes their push instead of letting sync
/// announce them with this node as their only seeder.
const HELD_BACK_KEY: &str = "held_back";

/// What a publisher push hears from the connections.
enum PushEvent {
    Holding(NodeId),
    Declined(NodeId),
}

/// Replication state of the node.
pub(crate) struct Replication {
    pub config: ReplicationConfig,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Records published here and not announced yet, with when their push began (Unix seconds): the announce
    /// time-out counts from then, across restarts.
    held_back: HashMap<RecordId, u64>,
    /// Live publisher pushes, by infohash.
    pushes: HashMap<InfoHash, mpsc::Sender<PushEvent>>,
    /// Known peers holding a complete copy, by infohash.
    holders: HashMap<InfoHash, Vec<NodeId>>,
    /// Publications this node is replicating for another publisher.
    replicating: HashSet<InfoHash>,
}

impl Replication {
    pub fn new(config: ReplicationConfig) -> Replication {
        Replication {
            config,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a record published here still waits for its announcement (and must not be served to peers).
    pub fn is_held_back(&self, id: &RecordId) -> bool {
        self.lock().held_back.contains_key(id)
    }

    /// Known peers that hold a full copy of a publication.
    pub fn holders(&self, infohash: &InfoHash) -> Vec<NodeId> {
        self.lock()
            .holders
            .get(infohash)
            .cloned()
            .unwrap_or_default()
    }

    fn note_holder(&self, infohash: InfoHash, peer: NodeId) -> Option<mpsc::Sender<PushEvent>> {
        let mut state = self.lock();
        let tracked = state.holders.len();
        if let Some(list) = state.holders.get_mut(&infohash) {
            if !list.contains(&peer) && list.len() < MAX_HOLDERS {
                list.push(peer);
            }
        } else if tracked < MAX_TRACKED {
            state.holders.insert(infohash, vec![peer]);
        }
        state.pushes.get(&infohash).cloned()
    }

    /// Forget what is known about a publication (its author was blocked, or its data evicted here).
    pub fn forget(&self, infohash: &InfoHash) {
        self.lock().holders.remove(infohash);
    }
}

/// After a publish: announce at once, or hold the record back and ask peers to replicate first. Returns whether the
/// publication was announced already.
pub(crate) fn after_publish(inner: &Arc<Inner>, record: &SignedRecord) -> bool {
    hold_back_or_announce(inner, record, unix_now())
}

/// [`after_publish`] for a push that began at `started` (earlier, if an earlier run of the node began it).
fn hold_back_or_announce(inner: &Arc<Inner>, record: &SignedRecord, started: u64) -> bool {
    let config = &inner.replication.config;
    if config.replicas == 0 {
        announce(inner, record);
        return true;
    }
    let infohash = record.body().infohash;
    let (events_tx, events) = mpsc::channel(64);
    {
        let mut state = inner.replication.lock();
        state.held_back.insert(record.id(), started);
        let running = state.pushes.contains_key(&infohash);
        if !running {
            state.pushes.insert(infohash, events_tx);
        }
        drop(state);
        // The record policy keeps it from peers until it is released.
        let decisions = crate::record_policy::feed(
            inner,
            InEvent::Published {
                id: record.id(),
                hold_back: true,
            },
        );
        crate::record_policy::carry_out(inner, None, decisions);
        if running {
            // The same bytes published again while the first push still runs: that push announces both.
            return false;
        }
    }
    save_held_back(inner);
    let push_config = PushConfig {
        replicas_wanted: config.replicas,
        announce_timeout_secs: config.announce_timeout.as_secs(),
        ask_timeout_secs: config.ask_timeout.as_secs().max(1),
    };
    tokio::spawn(drive_push(
        inner.clone(),
        record.clone(),
        push_config,
        started,
        events,
    ));
    false
}

/// Make a publication known: push its record to the connected peers, put the author's feed head and announce the
/// torrent in the DHT.
fn announce(inner: &Arc<Inner>, record: &SignedRecord) {
    let infohash = record.body().infohash;
    let held: Vec<RecordId> = {
        let mut state = inner.replication.lock();
        state.pushes.remove(&infohash);
        state.held_back.keys().copied().collect()
    };
    // Every held-back record of this infohash goes out together (the same bytes published twice).
    let released: Vec<RecordId> = held
        .into_iter()
        .filter(|id| *id == record.id() || same_infohash(inner, id, &infohash))
        .collect();
    {
        let mut state = inner.replication.lock();
        for id in &released {
            state.held_back.remove(id);
        }
    }
    save_held_back(inner);
    // The record policy pushes it (and any held-back twin) to its pick of the connected peers.
    let mut ids = vec![record.id()];
    ids.extend(released.iter().filter(|id| **id != record.id()));
    for id in ids {
        let event = if inner.peers.policy().is_held_back(&id) {
            InEvent::Released { id }
        } else {
            InEvent::Published {
                id,
                hold_back: false,
            }
        };
        let decisions = crate::record_policy::feed(inner, event);
        crate::record_policy::carry_out(inner, None, decisions);
    }
    // The publisher holds every piece too: peers count it among the full copies.
    broadcast_holding(inner, infohash);
    crate::discovery::spawn_feed_put(inner.clone(), record.id());
    let inner = inner.clone();
    tokio::spawn(async move { crate::discovery::announce_torrent(&inner, infohash).await });
    tracing::info!(id = %record.id(), %infohash, "publication announced");
}

fn save_held_back(inner: &Inner) {
    let saved = format_held_back(&inner.replication.lock().held_back);
    if let Err(error) = inner.catalog().set_setting(HELD_BACK_KEY, &saved) {
        tracing::warn!(%error, "cannot save the publications waiting for a replica");
    }
}

/// At start: publications still held back when the node stopped are held back again and peers are asked again; the
/// announce time-out still counts from when the push first began.
pub(crate) fn resume_held_back(inner: &Arc<Inner>) {
    let saved = inner
        .catalog()
        .get_setting(HELD_BACK_KEY)
        .ok()
        .flatten()
        .unwrap_or_default();
    for (id, started) in parse_held_back(&saved, unix_now()) {
        // The catalog lock must be released before `hold_back_or_announce` takes it again.
        let record = inner.catalog().get_record(&id);
        if let Ok(Some(record)) = record {
            tracing::info!(%id, started, "publication still waits for a replica; asking peers again");
            hold_back_or_announce(inner, &record, started);
        }
    }
    save_held_back(inner);
}

/// The saved form of the held-back records: `ID@STARTED,...`, sorted so that the same state saves the same text.
fn format_held_back(held_back: &HashMap<RecordId, u64>) -> String {
    let mut entries: Vec<String> = held_back
        .iter()
        .map(|(id, started)| format!("{id}@{started}"))
        .collect();
    entries.sort();
    entries.join(",")
}

/// Reads [`format_held_back`]'s text. An entry without a start time (saved by an older version) began `now`; an
/// entry that does not parse (only a damaged settings row has one) is dropped.
fn parse_held_back(saved: &str, now: u64) -> Vec<(RecordId, u64)> {
    saved
        .split(',')
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let (id, started) = match entry.split_once('@') {
                Some((id, started)) => (id, started.parse::<u64>().ok()?),
                None => (entry, now),
            };
            Some((id.parse::<RecordId>().ok()?, started))
        })
        .collect()
}

fn same_infohash(inner: &Inner, id: &RecordId, infohash: &InfoHash) -> bool {
    matches!(inner.catalog().get_record(id), Ok(Some(r)) if r.body().infohash == *infohash)
}

async fn drive_push(
    inner: Arc<Inner>,
    record: SignedRecord,
    config: PushConfig,
    started: u64,
    mut events: mpsc::Receiver<PushEvent>,
) {
    let infohash = record.body().infohash;
    let mut push = PublisherPush::resumed(config, infohash, started, unix_now());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut announced = false;
    loop {
        let now = unix_now();
        tokio::select! {
            _ = inner.cancel.cancelled() => return,
            _ = tick.tick() => {
                push.peers_available(&inner.peers.connected_ids(), now);
                push.tick(now);
            }
            event = events.recv() => match event {
                Some(PushEvent::Holding(peer)) => push.replica_progress(&peer, true, now),
                Some(PushEvent::Declined(peer)) => push.refused(&peer, now),
                None => return,
            },
        }
        while let Some(action) = push.poll() {
            match action {
                PushAction::AskReplicate(peer) => {
                    let message = Message::Replicate {
                        record: record.bytes().to_vec(),
                    };
                    if inner.peers.send_to(&peer, message) {
                        tracing::info!(%peer, %infohash, "asked a peer to replicate");
                    } else {
                        push.peer_gone(&peer, unix_now());
                    }
                }
                PushAction::Announce => {
                    if !announced {
                        announced = true;
                        announce(&inner, &record);
                    }
                }
                PushAction::Done => {
                    tracing::info!(%infohash, replicas = push.full_replicas(), "publisher push finished");
                    inner.replication.lock().pushes.remove(&infohash);
                    return;
                }
            }
        }
    }
}

/// A peer holds complete copies of these publications.
pub(crate) fn on_holding(inner: &Inner, from: &NodeId, infohashes: Vec<[u8; 20]>) {
    for infohash in infohashes {
        if let Some(push) = inner.replication.note_holder(InfoHash(infohash), *from) {
            let _ = push.try_send(PushEvent::Holding(*from));
        }
    }
}

/// A peer will not replicate a publication of ours.
pub(crate) fn on_declined(inner: &Inner, from: &NodeId, infohash: [u8; 20]) {
    let push = inner
        .replication
        .lock()
        .pushes
        .get(&InfoHash(infohash))
        .cloned();
    if let Some(push) = push {
        let _ = push.try_send(PushEvent::Declined(*from));
    }
}

/// A publisher asks us to replicate. Returns false when the record itself is invalid (held against the peer).
pub(crate) fn on_replicate(inner: &Arc<Inner>, from: &NodeId, bytes: Vec<u8>) -> bool {
    let ctx = ValidationContext {
        network: inner.network.clone(),
        now_unix: unix_now(),
    };
    let record = match validate_record(&bytes, &ctx) {
        Ok(record) => record,
        Err(error) => {
            tracing::warn!(peer = %from, %error, "refused an invalid replicate request");
            return false;
        }
    };
    let infohash = record.body().infohash;
    let decline = |reason: &str| {
        tracing::info!(peer = %from, %infohash, reason, "declined to replicate");
        inner.peers.send_to(
            from,
            Message::Decline {
                infohash: infohash.0,
            },
        );
    };
    if let Err(refusal) = crate::admission::admit(inner, &record) {
        decline(&format!("record not admitted: {refusal:?}"));
        return true;
    }
    if record.body().total_size() > inner.cache.quota() {
        decline("larger than this node's cache quota");
        return true;
    }
    // Bound first: the catalog lock must be released before `store_replicated` takes it again.
    let existing = inner.catalog().get_torrent(&infohash);
    if let Ok(Some(row)) = existing
        && row.state == TorrentState::Complete
    {
        store_replicated(inner, &record);
        inner.peers.send_to(
            from,
            Message::Holding {
                infohashes: vec![infohash.0],
            },
        );
        return true;
    }
    {
        let mut state = inner.replication.lock();
        if state.replicating.contains(&infohash) {
            return true;
        }
        if state.replicating.len() >= MAX_REPLICATING {
            drop(state);
            decline("too many replications in progress");
            return true;
        }
        state.replicating.insert(infohash);
    }
    let source = inner.peers.bt_addr_of(from);
    tokio::spawn(replicate(inner.clone(), *from, record, source));
    true
}

async fn replicate(
    inner: Arc<Inner>,
    from: NodeId,
    record: SignedRecord,
    source: Option<SocketAddr>,
) {
    let infohash = record.body().infohash;
    tracing::info!(peer = %from, %infohash, "replicating a fresh publication");
    let outcome = fetch_replica(&inner, &record, source).await;
    inner.replication.lock().replicating.remove(&infohash);
    match outcome {
        Ok(()) => {
            store_replicated(&inner, &record);
            // `fetch`'s completion already told every connected peer; the publisher may have reconnected since.
            inner.peers.send_to(
                &from,
                Message::Holding {
                    infohashes: vec![infohash.0],
                },
            );
            tracing::info!(peer = %from, %infohash, "replica complete");
        }
        Err(error) => {
            tracing::warn!(peer = %from, %infohash, %error, "replication failed");
            inner.peers.send_to(
                &from,
                Message::Decline {
                    infohash: infohash.0,
                },
            );
        }
    }
}

async fn fetch_replica(
    inner: &Arc<Inner>,
    record: &SignedRecord,
    source: Option<SocketAddr>,
) -> Result<(), ApiError> {
    let infohash = record.body().infohash;
    crate::fetch::start_download(inner, record, source.into_iter().collect()).await?;
    let wait = inner.engine.wait_finished(&infohash.0);
    match tokio::time::timeout(inner.replication.config.ask_timeout, wait).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ApiError::internal("downloading the replica", error)),
        Err(_) => Err(ApiError::Unreachable(
            "the replica did not complete in time".into(),
        )),
    }
}

/// The replica is complete: the record joins our catalog (only now, so that we are a full seeder before anyone learns
/// of the publication from us).
fn store_replicated(inner: &Inner, record: &SignedRecord) {
    match inner.catalog().insert_record(record, unix_now()) {
        Ok(true) => {
            tracing::info!(id = %record.id(), title = %record.body().title, "new record (replicated)")
        }
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "cannot store a replicated record"),
    }
}

/// Tell every connected peer that this node now holds a publication complete.
pub(crate) fn broadcast_holding(inner: &Inner, infohash: InfoHash) {
    inner.peers.request(Message::Holding {
        infohashes: vec![infohash.0],
    });
}

/// The `Holding` messages listing what this node holds complete (the newest first), for a newly connected peer.
pub(crate) fn holding_messages(inner: &Inner) -> Vec<Message> {
    let mut complete: Vec<_> = inner
        .catalog()
        .list_torrents()
        .unwrap_or_default()
        .into_iter()
        .filter(|row| row.state == TorrentState::Complete)
        .collect();
    complete.sort_by_key(|row| std::cmp::Reverse(row.added_at));
    let held_back: HashSet<InfoHash> = inner.replication.lock().pushes.keys().copied().collect();
    let infohashes: Vec<[u8; 20]> = complete
        .into_iter()
        .filter(|row| !held_back.contains(&row.infohash))
        .take(HOLDING_ON_CONNECT)
        .map(|row| row.infohash.0)
        .collect();
    infohashes
        .chunks(MAX_HOLDING)
        .map(|chunk| Message::Holding {
            infohashes: chunk.to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> RecordId {
        RecordId::of_signed_bytes(&[n; 8])
    }

    #[test]
    fn held_back_records_keep_their_start_time_through_a_save() {
        let held_back = HashMap::from([(id(1), 1_700_000_000), (id(2), 1_700_000_500)]);
        let saved = format_held_back(&held_back);
        let mut parsed = parse_held_back(&saved, 1_800_000_000);
        parsed.sort();
        let mut expected: Vec<(RecordId, u64)> = held_back.into_iter().collect();
        expected.sort();
        assert_eq!(parsed, expected);
        assert_eq!(parse_held_back("", 5), Vec::new());
    }

    #[test]
    fn an_older_save_without_start_times_begins_now_and_damage_is_dropped() {
        let saved = format!("{},not-an-id,{}@soon,{}@12", id(1), id(2), id(3));
        assert_eq!(parse_held_back(&saved, 99), vec![(id(1), 99), (id(3), 12)]);
    }
}
