//! Content outlives its publisher (design decision 5): publisher push and replica bookkeeping.
//!
//! After a publish, the record is *held back*: it is not offered by reconciliation, fetch or author requests, its feed
//! head is not put and its torrent not announced. Connected peers are asked (`Replicate`) to fetch and seed it; when
//! the first one reports (`Holding`) that it has every piece, or when the announce time-out passes, the publication is
//! announced. The decisions live in `kolokol_core::replication::push`; this module carries them out.
//!
//! Every node tells its connected peers which publications it holds complete (`Holding`, on connect and after each
//! finished download). A claim counts (here: as the confirmation a push waits for) only once the peer proved it
//! against our own copy (`proving.rs`), so a node knows how many peers provably hold a full copy of what it holds.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::policy::InEvent;
use kolokol_core::record::{InfoHash, RecordId, SignedRecord, ValidationContext, validate_record};
use kolokol_core::replication::push::{PublisherPush, PushAction, PushConfig};
use kolokol_store::TorrentState;
use kolokol_transfer::Engine;
use kolokol_wire::Message;
use kolokol_wire::message::MAX_HOLDING;
use tokio::sync::mpsc;

use crate::admission::Admission;
use crate::cache::Cache;
use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::discovery::Discovery;
use crate::error::ApiError;
use crate::fetch::Fetcher;
use crate::peers::PeerRegistry;
use crate::record_policy::RecordPolicyOwner;
use crate::relaying::Relayer;
use crate::replicas::Replication;
use crate::replicas::{PushEvent, ReplicationSlot};
use crate::tasks::Tasks;

/// What publisher push and replica bookkeeping use: the replication owner, the peers asked to hold a record, the
/// catalog and admission (records pushed to this node), the engine and the cache (data held for others), and the
/// drivers it hands work to. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Replicator {
    pub tasks: Tasks,
    pub replication: Arc<Replication>,
    pub catalog: Arc<CatalogService>,
    pub peers: Arc<PeerRegistry>,
    pub policy: Arc<RecordPolicyOwner>,
    pub admission: Arc<Admission>,
    pub engine: Arc<Engine>,
    pub cache: Arc<Cache>,
    pub network: String,
    /// When the node started: the clock of bans (a peer whose replica proof fails is cut off).
    pub started: std::time::Instant,
    pub discovery: Discovery,
    pub fetcher: Fetcher,
    pub relayer: Relayer,
}

/// Complete publications listed to a peer right after connecting (the newest ones).
const HOLDING_ON_CONNECT: usize = 1024;
/// How often a replication looks whether the finished download is recorded complete yet.
const COMPLETION_POLL: Duration = Duration::from_millis(100);
/// Settings key of the publications still held back, so that a restart resumes their push instead of letting sync
/// announce them with this node as their only seeder.
const HELD_BACK_KEY: &str = "held_back";

/// After a publish: announce at once, or hold the record back and ask peers to replicate first. Returns whether the
/// publication was announced already.
pub(crate) async fn after_publish(replicator: &Replicator, record: &SignedRecord) -> bool {
    hold_back_or_announce(replicator, record, unix_now()).await
}

/// [`after_publish`] for a push that began at `started` (earlier, if an earlier run of the node began it).
async fn hold_back_or_announce(
    replicator: &Replicator,
    record: &SignedRecord,
    started: u64,
) -> bool {
    let config = &replicator.replication.config;
    if config.replicas == 0 {
        announce(replicator, record).await;
        return true;
    }
    let infohash = record.body().infohash;
    let events = replicator
        .replication
        .hold_back(record.id(), infohash, started);
    // The record policy keeps it from peers (no push, no offer, no answer) until it is released.
    crate::relaying::report(
        &replicator.relayer,
        [InEvent::Published {
            id: record.id(),
            hold_back: true,
        }],
    )
    .await;
    let Some(events) = events else {
        // The same bytes published again while the first push still runs: that push announces both.
        return false;
    };
    save_held_back(replicator).await;
    let push_config = PushConfig {
        replicas_wanted: config.replicas,
        announce_timeout_secs: config.announce_timeout.as_secs(),
        ask_timeout_secs: config.ask_timeout.as_secs().max(1),
    };
    replicator.tasks.spawn(
        "publisher push",
        drive_push(
            replicator.clone(),
            record.clone(),
            push_config,
            started,
            events,
        ),
    );
    false
}

/// Make a publication known: push its record to the connected peers, put the author's feed head and announce the
/// torrent in the DHT.
async fn announce(replicator: &Replicator, record: &SignedRecord) {
    let infohash = record.body().infohash;
    replicator.replication.end_push(&infohash);
    let held = replicator.replication.held_back_ids();
    // Every held-back record of this infohash goes out together (the same bytes published twice).
    let own = record.id();
    let others: Vec<SignedRecord> = replicator
        .catalog
        .run(move |catalog| {
            let mut others = Vec::new();
            for id in held.iter().filter(|id| **id != own) {
                if let Some(other) = catalog.get_record(id)?
                    && other.body().infohash == infohash
                {
                    others.push(other);
                }
            }
            Ok(others)
        })
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot read the other held-back records of a publication");
            Vec::new()
        });
    let released: Vec<RecordId> = std::iter::once(own)
        .chain(others.iter().map(|r| r.id()))
        .collect();
    replicator.replication.release(&released);
    save_held_back(replicator).await;
    // The record policy sends it (and any held-back twin) to its pick of the connected peers: released if it was
    // held back, published now if not (`--replicas 0`).
    let events: Vec<InEvent<NodeId>> = released
        .iter()
        .map(|&id| {
            if replicator.policy.is_held_back(&id) {
                InEvent::Released { id }
            } else {
                InEvent::Published {
                    id,
                    hold_back: false,
                }
            }
        })
        .collect();
    crate::relaying::report(&replicator.relayer, events).await;
    // The publisher holds every piece too: peers count it among the full copies.
    broadcast_holding(replicator, infohash);
    crate::discovery::spawn_feed_put(
        replicator.discovery.clone(),
        record.id(),
        record.body().author,
    );
    let replicator = replicator.clone();
    let tasks = replicator.tasks.clone();
    tasks.spawn("announce a publication", async move {
        crate::discovery::announce_torrent(&replicator.discovery, infohash).await
    });
    tracing::info!("publication announced");
    tracing::debug!(id = %record.id(), %infohash, "publication announced");
}

async fn save_held_back(replicator: &Replicator) {
    let saved = replicator.replication.held_back_text();
    let written = replicator
        .catalog
        .run(move |c| c.set_setting(HELD_BACK_KEY, &saved))
        .await;
    if let Err(error) = written {
        tracing::warn!(%error, "cannot save the publications waiting for a replica");
    }
}

/// At start: publications still held back when the node stopped are held back again and peers are asked again; the
/// announce time-out still counts from when the push first began.
pub(crate) async fn resume_held_back(replicator: &Replicator) {
    let saved = replicator
        .catalog
        .run(|c| c.get_setting(HELD_BACK_KEY))
        .await;
    let saved = match saved {
        Ok(saved) => saved.unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the publications waiting for a replica");
            return;
        }
    };
    for (id, started) in crate::replicas::parse_held_back(&saved, unix_now()) {
        let record = replicator.catalog.run(move |c| c.get_record(&id)).await;
        if let Ok(Some(record)) = record {
            tracing::info!(
                started,
                "publication still waits for a replica; asking peers again"
            );
            tracing::debug!(%id, started, "publication still waits for a replica; asking peers again");
            hold_back_or_announce(replicator, &record, started).await;
        }
    }
    save_held_back(replicator).await;
}

async fn drive_push(
    replicator: Replicator,
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
            _ = replicator.tasks.cancelled() => return,
            _ = tick.tick() => {
                push.peers_available(&replicator.peers.connected_ids(), now);
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
                    if replicator.peers.send_to(&peer, message) {
                        tracing::info!(%peer, "asked a peer to replicate");
                        tracing::debug!(%peer, %infohash, "asked a peer to replicate");
                    } else {
                        push.peer_gone(&peer, unix_now());
                    }
                }
                PushAction::Announce => {
                    if !announced {
                        announced = true;
                        announce(&replicator, &record).await;
                    }
                }
                PushAction::Done => {
                    tracing::info!(replicas = push.full_replicas(), "publisher push finished");
                    tracing::debug!(%infohash, replicas = push.full_replicas(), "publisher push finished");
                    replicator.replication.end_push(&infohash);
                    return;
                }
            }
        }
    }
}

/// A peer will not replicate a publication of ours, or does not hold one it claimed (a decline of our challenge).
pub(crate) fn on_declined(replicator: &Replicator, from: &NodeId, infohash: [u8; 20]) {
    replicator.replication.declined(from, &InfoHash(infohash));
    let push = replicator.replication.push_of(&InfoHash(infohash));
    if let Some(push) = push {
        let _ = push.try_send(PushEvent::Declined(*from));
    }
}

/// A publisher asks us to replicate. Returns false when the record itself is invalid (held against the peer).
pub(crate) async fn on_replicate(replicator: &Replicator, from: &NodeId, bytes: Vec<u8>) -> bool {
    let ctx = ValidationContext {
        network: replicator.network.clone(),
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
        tracing::info!(peer = %from, reason, "declined to replicate");
        tracing::debug!(peer = %from, %infohash, reason, "declined to replicate");
        replicator.peers.send_to(
            from,
            Message::Decline {
                infohash: infohash.0,
            },
        );
    };
    let rules = replicator.admission.rules(true);
    let judged = record.clone();
    let admitted = replicator
        .catalog
        .run(move |catalog| {
            let admitted = crate::admission::admit(catalog, rules, &judged, unix_now());
            Ok((admitted, catalog.get_torrent(&infohash)?))
        })
        .await;
    let existing = match admitted {
        Ok((Ok(()), existing)) => existing,
        Ok((Err(refusal), _)) => {
            decline(&format!("record not admitted: {refusal:?}"));
            return true;
        }
        Err(error) => {
            decline(&format!("the catalog could not be consulted: {error}"));
            return true;
        }
    };
    if record.body().total_size() > replicator.cache.quota() {
        decline("larger than this node's cache quota");
        return true;
    }
    // What the reader watched is not confirmed to anyone, not even to a publisher asking for a replica: a peer could
    // ask everyone for a known video to learn who holds it.
    if let Some(row) = &existing
        && !replicator.cache.advertises(row)
    {
        decline("not offered");
        return true;
    }
    if let Some(row) = existing
        && row.state == TorrentState::Complete
    {
        store_replicated(replicator, &record).await;
        replicator.peers.send_to(
            from,
            Message::Holding {
                infohashes: vec![infohash.0],
            },
        );
        return true;
    }
    match replicator.replication.start_replicating(infohash) {
        ReplicationSlot::Taken => {}
        ReplicationSlot::AlreadyRunning => return true,
        ReplicationSlot::Full => {
            decline("too many replications in progress");
            return true;
        }
    }
    let source = replicator.peers.bt_addr_of(from);
    replicator.tasks.spawn(
        "replicate",
        replicate(replicator.clone(), *from, record, source),
    );
    true
}

async fn replicate(
    replicator: Replicator,
    from: NodeId,
    record: SignedRecord,
    source: Option<SocketAddr>,
) {
    let infohash = record.body().infohash;
    tracing::info!(peer = %from, "replicating a fresh publication");
    tracing::debug!(peer = %from, %infohash, "replicating a fresh publication");
    let outcome = fetch_replica(&replicator, &record, source).await;
    replicator.replication.end_replicating(&infohash);
    match outcome {
        Ok(()) => {
            store_replicated(&replicator, &record).await;
            // `fetch`'s completion already told every connected peer; the publisher may have reconnected since.
            replicator.peers.send_to(
                &from,
                Message::Holding {
                    infohashes: vec![infohash.0],
                },
            );
            tracing::info!(peer = %from, "replica complete");
            tracing::debug!(peer = %from, %infohash, "replica complete");
        }
        Err(error) => {
            tracing::warn!(peer = %from, %error, "replication failed");
            tracing::debug!(peer = %from, %infohash, %error, "replication failed");
            replicator.peers.send_to(
                &from,
                Message::Decline {
                    infohash: infohash.0,
                },
            );
        }
    }
}

async fn fetch_replica(
    replicator: &Replicator,
    record: &SignedRecord,
    source: Option<SocketAddr>,
) -> Result<(), ApiError> {
    let infohash = record.body().infohash;
    crate::fetch::start_download(
        &replicator.fetcher,
        record,
        source.into_iter().collect(),
        false,
    )
    .await?;
    // Finished means the download task has synced the data to disk and the catalog calls it complete (`fetch`): only
    // then is this node a full copy, and only then may it say so (`Holding`) or report it in `status`.
    let wait = async {
        replicator.engine.wait_finished(&infohash.0).await?;
        loop {
            let row = replicator
                .catalog
                .run(move |c| c.get_torrent(&infohash))
                .await;
            if let Ok(Some(row)) = row
                && row.state == TorrentState::Complete
            {
                return Ok::<(), kolokol_transfer::TransferError>(());
            }
            tokio::time::sleep(COMPLETION_POLL).await;
        }
    };
    match tokio::time::timeout(replicator.replication.config.ask_timeout, wait).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ApiError::internal("downloading the replica", error)),
        Err(_) => Err(ApiError::Unreachable(
            "the replica did not complete in time".into(),
        )),
    }
}

/// The replica is complete: the record joins our catalog (only now, so that we are a full seeder before anyone learns
/// of the publication from us).
async fn store_replicated(replicator: &Replicator, record: &SignedRecord) {
    let stored = record.clone();
    let inserted = replicator
        .catalog
        .run(move |c| c.insert_record(&stored, unix_now()))
        .await;
    match inserted {
        Ok(true) => {
            tracing::info!("new record (replicated)");
            tracing::debug!(id = %record.id(), title = %record.body().title, "new record (replicated)")
        }
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "cannot store a replicated record"),
    }
}

/// Tell every connected peer that this node now holds a publication complete.
pub(crate) fn broadcast_holding(replicator: &Replicator, infohash: InfoHash) {
    replicator.peers.request(Message::Holding {
        infohashes: vec![infohash.0],
    });
}

/// The `Holding` messages listing what this node holds complete (the newest first), for a newly connected peer.
pub(crate) async fn holding_messages(replicator: &Replicator) -> Vec<Message> {
    let rows = match replicator.catalog.run(|c| c.list_torrents()).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::debug!(%error, "cannot list what this node holds");
            return Vec::new();
        }
    };
    let mut complete: Vec<_> = rows
        .into_iter()
        .filter(|row| row.state == TorrentState::Complete && replicator.cache.advertises(row))
        .collect();
    complete.sort_by_key(|row| std::cmp::Reverse(row.added_at));
    let held_back: HashSet<InfoHash> = replicator.replication.pushing();
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
