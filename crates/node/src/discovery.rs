//! Discovery in the node: the DHT (rendezvous, torrent peers, author feeds), LAN multicast and the peer cache all
//! feed candidate addresses into the overlay (`kolokol_core::overlay`), which decides whom to dial.
//!
//! Background tasks started here: rendezvous announce + lookup, LAN listen + announce, announcing seeded torrents,
//! polling followed authors' feed heads, saving the DHT routing table.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

use kolokol_core::keys::AuthorId;
use kolokol_core::overlay::Source;
use kolokol_core::record::{InfoHash, RecordId};
use kolokol_discovery::{
    Dht, DhtConfig, FeedHead, Lan, LanConfig, LanInterfaces, Rendezvous, RendezvousConfig,
    ServerMode, next_feed_seq,
};
use kolokol_transfer::Engine;
use kolokol_wire::Message;
use tokio::sync::Notify;

use crate::cache::Cache;
use crate::catalog::CatalogService;
use crate::clock::unix_now;
use crate::config::DiscoveryConfig;
use crate::peers::PeerRegistry;
use crate::start_error::StartError;
use crate::tasks::Tasks;
use crate::wire_identity::WireIdentity;

/// What discovery's tasks use: the DHT, the peers it feeds with addresses, the catalog (torrents to announce, feeds
/// followed, the peer cache) and this node's keys and addresses. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Discovery {
    pub tasks: Tasks,
    pub catalog: Arc<CatalogService>,
    pub peers: Arc<PeerRegistry>,
    pub engine: Arc<Engine>,
    /// Says which holdings may be announced (not what the reader watched, unless they share it).
    pub cache: Arc<Cache>,
    pub dht: Dht,
    /// Woken to poll followed authors' feeds at once (after `follow`).
    pub feeds_wake: Arc<Notify>,
    pub network: String,
    /// The wire identity: LAN announces carry its instance, renewed with it.
    pub identity: Arc<WireIdentity>,
    pub identities: Arc<crate::identities::Identities>,
    pub wire_addr: SocketAddr,
    pub bt_addr: SocketAddr,
    /// When the node started: the overlay's clock.
    pub started: Instant,
    /// Announce nothing anywhere: no rendezvous announce (lookups only), no torrent announce, no feed head put
    /// (a bridge's node: see the `presence` module).
    pub hidden: bool,
}

const DHT_PORT_KEY: &str = "dht_port";
const FEED_SEQ_KEY: &str = "feed_seq";
/// How often seeded torrents are announced on the DHT (announcements expire after about 30 minutes).
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// The first wait before a failed announcement is tried again; the wait doubles up to [`ANNOUNCE_RETRY_MAX`].
const ANNOUNCE_RETRY_FIRST: Duration = Duration::from_secs(2);
const ANNOUNCE_RETRY_MAX: Duration = Duration::from_secs(60);
/// How often the routing table is saved while running (it is saved at shutdown too).
const SAVE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Connected kolokol peers from which the rendezvous slows down to its interval (see `spawn_rendezvous`).
const ENOUGH_PEERS_FOR_SLOW_RENDEZVOUS: usize = 1;
/// How often a download with too few peers asks the DHT for more.
const PEER_LOOKUP_INTERVAL: Duration = Duration::from_secs(20);

/// Start the DHT node on the kept (or configured) UDP address; `read_only`: never a full DHT node (a bridge's).
pub(crate) async fn start_dht(
    config: &DiscoveryConfig,
    read_only: bool,
    network: &str,
    state_file: std::path::PathBuf,
    catalog: &mut kolokol_store::Catalog,
) -> Result<Dht, StartError> {
    let chosen = config.dht_listen.is_none();
    let bind = match config.dht_listen {
        Some(SocketAddr::V4(addr)) => addr,
        Some(SocketAddr::V6(addr)) => {
            return Err(StartError::DhtNotIpv4(addr));
        }
        None => {
            let kept = catalog
                .get_setting(DHT_PORT_KEY)?
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(0);
            SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, kept)
        }
    };
    let dht_config = |bind| DhtConfig {
        network: network.to_owned(),
        bind,
        bootstrap: config.bootstrap.clone(),
        no_default_bootstrap: config.no_default_bootstrap,
        state_file: Some(state_file.clone()),
        server_mode: if read_only {
            ServerMode::Never
        } else if config.dht_server {
            ServerMode::Always
        } else {
            ServerMode::Auto
        },
        request_timeout: config.dht_request_timeout,
    };
    let dht = match Dht::start(dht_config(bind)).await {
        Ok(dht) => dht,
        Err(error) if chosen && bind.port() != 0 => {
            tracing::warn!(%error, %bind, "kept DHT port is busy; choosing another");
            Dht::start(dht_config(SocketAddrV4::new(*bind.ip(), 0)))
                .await
                .map_err(StartError::Dht)?
        }
        Err(error) => return Err(StartError::Dht(error)),
    };
    if chosen {
        catalog.set_setting(DHT_PORT_KEY, &dht.local_addr().port().to_string())?;
    }
    Ok(dht)
}

/// Spawn every discovery task.
pub(crate) async fn spawn_all(discovery: &Discovery, config: &DiscoveryConfig) {
    spawn_rendezvous(discovery.clone(), config.rendezvous_interval);
    if config.lan {
        spawn_lan(discovery.clone(), &config.lan_interfaces).await;
    }
    spawn_announcer(discovery.clone());
    spawn_feed_poller(discovery.clone(), config.feed_poll_interval);
    spawn_state_saver(discovery.clone());
}

fn spawn_rendezvous(discovery: Discovery, interval: Duration) {
    let mut config = RendezvousConfig::new(discovery.wire_addr.port());
    config.interval = interval;
    config.announce = !discovery.hidden;
    // Enough peers: one connected kolokol peer. The rendezvous is only the way in; the overlay's address exchange
    // with that peer finds the rest of the network.
    // Weak: the rendezvous's own task does not keep the peers registry alive.
    let weak = Arc::downgrade(&discovery.peers);
    let enough_peers = Box::new(move || {
        weak.upgrade()
            .is_some_and(|peers| peers.connected_count() >= ENOUGH_PEERS_FOR_SLOW_RENDEZVOUS)
    });
    let mut rendezvous = Rendezvous::spawn_with_peers(discovery.dht.clone(), config, enough_peers);
    let tasks = discovery.tasks.clone();
    // Graceful: the rendezvous task is stopped and awaited before this one ends.
    tasks.spawn_graceful("rendezvous", async move {
        loop {
            let found = tokio::select! {
                _ = discovery.tasks.cancelled() => break,
                found = rendezvous.next() => found,
            };
            let Some(addr) = found else { break };
            if addr == discovery.wire_addr {
                continue;
            }
            discovery
                .peers
                .heard_of(addr, Source::Dht, None, discovery.started.elapsed());
        }
        rendezvous.stop().await;
    });
}

async fn spawn_lan(discovery: Discovery, interfaces: &[std::net::Ipv4Addr]) {
    let mut renewals = discovery.identity.subscribe();
    let instance = renewals.borrow_and_update().lan_instance;
    let mut config = LanConfig::new(&discovery.network, instance, discovery.wire_addr.port());
    if !interfaces.is_empty() {
        config.interfaces = LanInterfaces::Only(interfaces.to_vec());
    }
    let mut lan = match Lan::start(config).await {
        Ok(lan) => lan,
        Err(error) => {
            tracing::warn!(%error, "LAN discovery is off: it could not start");
            return;
        }
    };
    let tasks = discovery.tasks.clone();
    // Graceful: the LAN sockets are closed before this one ends.
    tasks.spawn_graceful("lan discovery", async move {
        loop {
            let heard = tokio::select! {
                _ = discovery.tasks.cancelled() => break,
                renewed = renewals.changed() => {
                    if renewed.is_err() {
                        break;
                    }
                    // The wire identity was renewed: so is what the LAN hears from us, at once.
                    let instance = renewals.borrow_and_update().lan_instance;
                    lan.set_instance(instance);
                    continue;
                }
                heard = lan.next() => heard,
            };
            let Some(peer) = heard else { break };
            tracing::debug!(addr = %peer.addr, "heard a kolokol node on the LAN");
            discovery
                .peers
                .heard_of(peer.addr, Source::Lan, None, discovery.started.elapsed());
        }
        lan.stop().await;
    });
}

/// Announce every complete torrent on the DHT now and every [`ANNOUNCE_INTERVAL`], so that any BitTorrent client
/// (and any kolokol node) finds this node as a seeder. Announcements that fail are tried again within the round.
fn spawn_announcer(discovery: Discovery) {
    let tasks = discovery.tasks.clone();
    tasks.spawn("torrent announcer", async move {
        loop {
            let round_ends = tokio::time::Instant::now() + ANNOUNCE_INTERVAL;
            let rows = match discovery.catalog.run(|c| c.list_torrents()).await {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::debug!(%error, "cannot list torrents to announce");
                    Vec::new()
                }
            };
            let complete: Vec<InfoHash> = rows
                .into_iter()
                .filter(|r| {
                    r.state == kolokol_store::TorrentState::Complete
                        && discovery.cache.advertises(r)
                })
                .map(|r| r.infohash)
                .collect();
            let failed = announce_each(&discovery, complete).await;
            announce_until_done(&discovery, failed, round_ends).await;
            tokio::select! {
                _ = discovery.tasks.cancelled() => return,
                _ = tokio::time::sleep_until(round_ends) => {}
            }
        }
    });
}

/// Announce a torrent this node now seeds in full (just published, downloaded or imported).
///
/// An announcement fails when no DHT node answers: the routing table is still empty, or the network was just cut off
/// from part of it. It is then tried again with back-off until it succeeds, for up to [`ANNOUNCE_INTERVAL`] (when the
/// announcer's next round takes over): otherwise a downloader that is not a direct kolokol peer of the only seeder
/// finds nobody that has the data for that long.
pub(crate) async fn announce_torrent(discovery: &Discovery, infohash: InfoHash) {
    let failed = announce_each(discovery, vec![infohash]).await;
    if failed.is_empty() {
        return;
    }
    let discovery = discovery.clone();
    let give_up = tokio::time::Instant::now() + ANNOUNCE_INTERVAL;
    let tasks = discovery.tasks.clone();
    tasks.spawn("torrent announce retry", async move {
        announce_until_done(&discovery, failed, give_up).await
    });
}

/// Announce each torrent once, skipping those no longer complete here or not advertised (what the reader watched,
/// unless they share it); returns the ones whose announcement failed.
async fn announce_each(discovery: &Discovery, infohashes: Vec<InfoHash>) -> Vec<InfoHash> {
    let mut failed = Vec::new();
    if discovery.hidden {
        // A bridge's node seeds what peers ask it for, but tells the DHT nothing.
        return failed;
    }
    for infohash in infohashes {
        if discovery.tasks.is_cancelled() {
            break;
        }
        let complete = matches!(
            discovery.catalog.run(move |c| c.get_torrent(&infohash)).await,
            Ok(Some(row)) if row.state == kolokol_store::TorrentState::Complete && discovery.cache.advertises(&row)
        );
        if !complete {
            continue;
        }
        match discovery
            .dht
            .announce_peer(infohash, discovery.bt_addr.port())
            .await
        {
            Ok(()) => tracing::debug!(%infohash, "announced on the DHT"),
            Err(error) => {
                tracing::debug!(%error, %infohash, "DHT announce failed");
                failed.push(infohash);
            }
        }
    }
    failed
}

/// Try failed announcements again, waiting longer each time, until each has succeeded, `give_up` has come or the node
/// stops.
async fn announce_until_done(
    discovery: &Discovery,
    mut pending: Vec<InfoHash>,
    give_up: tokio::time::Instant,
) {
    let mut wait = ANNOUNCE_RETRY_FIRST;
    while !pending.is_empty() {
        if tokio::time::Instant::now() + wait >= give_up {
            return;
        }
        tokio::select! {
            _ = discovery.tasks.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(ANNOUNCE_RETRY_MAX);
        pending = announce_each(discovery, pending).await;
    }
}

/// While a download runs, ask the DHT for its peers now and then and give new ones to the engine.
pub(crate) fn spawn_peer_lookup(discovery: Discovery, infohash: InfoHash) {
    let tasks = discovery.tasks.clone();
    tasks.spawn("dht peer lookup", async move {
        loop {
            let finished = discovery
                .engine
                .progress(&infohash.0)
                .is_none_or(|p| p.finished);
            if finished || discovery.tasks.is_cancelled() {
                return;
            }
            let peers = discovery.dht.get_peers(infohash).await;
            let peers: Vec<SocketAddr> = peers
                .into_iter()
                .filter(|p| *p != discovery.bt_addr)
                .collect();
            if !peers.is_empty() {
                match discovery.engine.add_peers(&infohash.0, peers).await {
                    Ok(0) => {}
                    Ok(new) => {
                        tracing::info!(new, "peers found through the DHT");
                        tracing::debug!(%infohash, new, "peers found through the DHT");
                    }
                    Err(error) => tracing::debug!(%error, %infohash, "cannot add DHT peers"),
                }
            }
            tokio::select! {
                _ = discovery.tasks.cancelled() => return,
                _ = tokio::time::sleep(PEER_LOOKUP_INTERVAL) => {}
            }
        }
    });
}

/// After a publish: put the feed head (latest record, record count) of the identity that signed it in the DHT,
/// signed with that identity's key (each identity has its own feed; none names another). A bridge's node puts none.
pub(crate) fn spawn_feed_put(discovery: Discovery, latest: RecordId, author: AuthorId) {
    if discovery.hidden {
        tracing::info!("a bridge's node puts no feed head in the DHT");
        return;
    }
    let Some(key) = discovery.identities.by_author(&author) else {
        // Not one of ours (cannot happen for a record this node published): nothing we could sign.
        tracing::warn!("no local identity for a published record's author; feed head not put");
        return;
    };
    let tasks = discovery.tasks.clone();
    tasks.spawn("feed head put", async move {
        // Count, next sequence number and its saving are one job: two puts cannot take the same number.
        let taken = discovery
            .catalog
            .run(move |catalog| {
                let count = catalog.count_author_records(&author)?.max(1);
                let previous = catalog
                    .get_setting(FEED_SEQ_KEY)?
                    .and_then(|s| s.parse::<i64>().ok());
                let seq = next_feed_seq(previous, unix_now());
                catalog.set_setting(FEED_SEQ_KEY, &seq.to_string())?;
                Ok((count, seq))
            })
            .await;
        let (count, seq) = match taken {
            Ok(taken) => taken,
            Err(error) => {
                tracing::warn!(%error, "cannot put the feed head in the DHT");
                return;
            }
        };
        match discovery
            .dht
            .put_feed(&key, FeedHead { latest, count }, seq)
            .await
        {
            Ok(put) => {
                tracing::info!(count, seq, stored_at = put.stored_at, "feed head put in the DHT");
                tracing::debug!(%latest, count, seq, stored_at = put.stored_at, "feed head put in the DHT")
            }
            Err(error) => tracing::warn!(%error, "cannot put the feed head in the DHT"),
        }
    });
}

/// Read every followed author's feed head now and every `interval`; fetch what it names from connected peers.
fn spawn_feed_poller(discovery: Discovery, interval: Duration) {
    let tasks = discovery.tasks.clone();
    tasks.spawn("feed poller", async move {
        loop {
            poll_feeds(&discovery).await;
            tokio::select! {
                _ = discovery.tasks.cancelled() => return,
                _ = discovery.feeds_wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    });
}

async fn poll_feeds(discovery: &Discovery) {
    let follows = match discovery.catalog.run(|c| c.following()).await {
        Ok(follows) => follows,
        Err(error) => {
            tracing::debug!(%error, "cannot list followed authors");
            return;
        }
    };
    for follow in follows {
        if discovery.tasks.is_cancelled() {
            return;
        }
        poll_feed(discovery, follow.author, follow.last_seq).await;
    }
}

async fn poll_feed(discovery: &Discovery, author: AuthorId, last_seq: Option<i64>) {
    let Some(entry) = discovery.dht.get_feed(author).await else {
        follow_checked(discovery, author, None).await;
        return;
    };
    if last_seq.is_some_and(|seen| entry.seq <= seen) {
        follow_checked(discovery, author, None).await;
        return;
    }
    let latest = entry.head.latest;
    let have = discovery
        .catalog
        .run(move |catalog| {
            Ok((
                catalog.get_record(&latest)?,
                catalog.count_author_records(&author)?,
            ))
        })
        .await;
    let (have_latest, have_count) = match have {
        Ok(have) => have,
        Err(error) => {
            tracing::debug!(%error, %author, "cannot compare a feed head with the catalog");
            return;
        }
    };
    match have_latest {
        // The record the head names must be the author's own; a head pointing elsewhere is ignored.
        Some(record) if record.body().author != author => {
            tracing::warn!("feed head names another author's record; ignored");
            tracing::debug!(%author, latest = %entry.head.latest, "feed head names another author's record; ignored");
            follow_checked(discovery, author, None).await;
        }
        Some(_) if have_count >= entry.head.count => {
            follow_checked(discovery, author, Some(entry.seq)).await;
        }
        _ => {
            tracing::info!(
                count = entry.head.count,
                have = have_count,
                "feed head names records we lack; fetching them from peers"
            );
            tracing::debug!(%author, latest = %entry.head.latest, count = entry.head.count, have = have_count,
                "feed head names records we lack; fetching them from peers");
            discovery.peers.request(Message::Fetch {
                ids: vec![entry.head.latest],
            });
            discovery.peers.request(Message::FetchAuthor { author });
            follow_checked(discovery, author, None).await;
        }
    }
}

/// Note that a followed author's feed was checked (and up to which sequence number, if it was caught up with).
async fn follow_checked(discovery: &Discovery, author: AuthorId, seq: Option<i64>) {
    let noted = discovery
        .catalog
        .run(move |c| c.follow_checked(&author, seq, unix_now()))
        .await;
    if let Err(error) = noted {
        tracing::debug!(%error, %author, "cannot note a feed check");
    }
}

fn spawn_state_saver(discovery: Discovery) {
    let tasks = discovery.tasks.clone();
    tasks.spawn("discovery state saver", async move {
        loop {
            tokio::select! {
                _ = discovery.tasks.cancelled() => return,
                _ = tokio::time::sleep(SAVE_INTERVAL) => {}
            }
            save_state(&discovery).await;
        }
    });
}

/// Save the DHT routing table and the overlay's good addresses (the peer cache).
pub(crate) async fn save_state(discovery: &Discovery) {
    match discovery.dht.save_state().await {
        Ok(n) => tracing::debug!(nodes = n, "DHT routing table saved"),
        Err(error) => tracing::warn!(%error, "cannot save the DHT routing table"),
    }
    let cacheable = discovery.peers.cacheable(200);
    let saved = discovery
        .catalog
        .run(move |catalog| {
            for addr in cacheable {
                catalog.add_peer(&addr.to_string(), false)?;
            }
            Ok(())
        })
        .await;
    if let Err(error) = saved {
        tracing::warn!(%error, "cannot save the peer cache");
    }
}
