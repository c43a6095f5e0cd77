//! The tokio driver: one task owns the UDP socket and the [`Node`] and runs it; [`Dht`] is a cheap handle
//! that sends it commands. The task ends when the last handle is dropped.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::id::{Id, NodeInfo};
use crate::item::MutableItem;
use crate::node::{Config, Node, Outcome, QueryId};

/// Commands waiting for the task at most (callers wait for room: back-pressure, not an unbounded queue).
const COMMAND_QUEUE: usize = 64;

/// Why a DHT operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot bind the DHT socket to {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        source: std::io::Error,
    },
    #[error("the DHT task stopped")]
    Stopped,
    #[error("unexpected DHT result")]
    Unexpected,
}

/// What the node reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtInfo {
    pub id: Id,
    pub local_addr: SocketAddrV4,
    /// Routing-table nodes that are not bad.
    pub routing_table_size: usize,
    /// Of those, the ones that answered in the last 15 minutes.
    pub good_nodes: usize,
    /// Our address as the nodes that answered us see it, once two agree.
    pub public_addr: Option<SocketAddrV4>,
    /// Whether nodes we had not written to queried us (so we are reachable from outside).
    pub reached: bool,
    pub stored_infohashes: usize,
    pub stored_items: usize,
}

enum Command {
    Find(Request, oneshot::Sender<Outcome>),
    Info(oneshot::Sender<DhtInfo>),
    RoutingNodes(oneshot::Sender<Vec<SocketAddrV4>>),
}

enum Request {
    FindNode(Id),
    GetPeers(Id),
    Announce(Id, Option<u16>),
    GetMutable([u8; 32], Vec<u8>),
    PutMutable(MutableItem, Option<i64>),
    GetImmutable(Id),
    PutImmutable(Vec<u8>),
}

/// A running DHT node. Cheap to clone; the node stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Dht {
    commands: mpsc::Sender<Command>,
    local_addr: SocketAddrV4,
}

impl Dht {
    /// Binds `addr`, starts the node and joins the DHT through `bootstrap`.
    pub async fn bind(
        addr: SocketAddrV4,
        config: Config,
        bootstrap: &[SocketAddrV4],
    ) -> Result<Dht, NetError> {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| NetError::Bind { addr, source })?;
        let local_addr = match socket.local_addr() {
            Ok(SocketAddr::V4(a)) => a,
            Ok(SocketAddr::V6(_)) => addr,
            Err(source) => return Err(NetError::Bind { addr, source }),
        };
        let mut node = Node::new(StdRng::from_os_rng(), config);
        node.bootstrap(Instant::now().into_std(), bootstrap);
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(run(socket, node, receiver, local_addr));
        Ok(Dht {
            commands,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local_addr
    }

    async fn request(&self, request: Request) -> Result<Outcome, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Find(request, tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The closest nodes to `target` that answered.
    pub async fn find_node(&self, target: Id) -> Result<Vec<NodeInfo>, NetError> {
        match self.request(Request::FindNode(target)).await? {
            Outcome::Nodes(nodes) => Ok(nodes),
            _ => Err(NetError::Unexpected),
        }
    }

    /// Peers announced for `info_hash`.
    pub async fn get_peers(&self, info_hash: Id) -> Result<Vec<SocketAddrV4>, NetError> {
        match self.request(Request::GetPeers(info_hash)).await? {
            Outcome::Peers(peers) => Ok(peers),
            _ => Err(NetError::Unexpected),
        }
    }

    /// Announces `port` (or, with `None`, the port of our DHT socket) for `info_hash`; returns how many nodes
    /// stored the announcement.
    pub async fn announce_peer(&self, info_hash: Id, port: Option<u16>) -> Result<u32, NetError> {
        self.stored(Request::Announce(info_hash, port)).await
    }

    /// Verified mutable items of `key` and `salt`, largest `seq` first.
    pub async fn get_mutable(
        &self,
        key: [u8; 32],
        salt: &[u8],
    ) -> Result<Vec<MutableItem>, NetError> {
        match self
            .request(Request::GetMutable(key, salt.to_vec()))
            .await?
        {
            Outcome::Mutable(items) => Ok(items),
            _ => Err(NetError::Unexpected),
        }
    }

    /// Puts a signed mutable item; returns how many nodes stored it.
    pub async fn put_mutable(&self, item: MutableItem, cas: Option<i64>) -> Result<u32, NetError> {
        self.stored(Request::PutMutable(item, cas)).await
    }

    /// The immutable item with `target`, if a node has it.
    pub async fn get_immutable(&self, target: Id) -> Result<Option<Vec<u8>>, NetError> {
        match self.request(Request::GetImmutable(target)).await? {
            Outcome::Immutable(value) => Ok(value),
            _ => Err(NetError::Unexpected),
        }
    }

    /// Puts an immutable item (bencoded `value`); returns how many nodes stored it.
    pub async fn put_immutable(&self, value: Vec<u8>) -> Result<u32, NetError> {
        self.stored(Request::PutImmutable(value)).await
    }

    async fn stored(&self, request: Request) -> Result<u32, NetError> {
        match self.request(request).await? {
            Outcome::Stored { stored_at } => Ok(stored_at),
            _ => Err(NetError::Unexpected),
        }
    }

    pub async fn info(&self) -> Result<DhtInfo, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Info(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Addresses of the routing-table nodes that are not bad, closest to our id first (what to save).
    pub async fn routing_nodes(&self) -> Result<Vec<SocketAddrV4>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::RoutingNodes(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }
}

fn start(node: &mut Node<StdRng>, now: std::time::Instant, request: Request) -> QueryId {
    match request {
        Request::FindNode(target) => node.find_node(now, target),
        Request::GetPeers(info_hash) => node.get_peers(now, info_hash),
        Request::Announce(info_hash, port) => node.announce_peer(now, info_hash, port),
        Request::GetMutable(key, salt) => node.get_mutable(now, key, &salt),
        Request::PutMutable(item, cas) => node.put_mutable(now, item, cas),
        Request::GetImmutable(target) => node.get_immutable(now, target),
        Request::PutImmutable(value) => node.put_immutable(now, value),
    }
}

fn info(node: &Node<StdRng>, local_addr: SocketAddrV4) -> DhtInfo {
    let now = Instant::now().into_std();
    let table = node.routing_table();
    DhtInfo {
        id: node.id(),
        local_addr,
        routing_table_size: table.entries().filter(|e| !e.is_bad()).count(),
        good_nodes: table.good_count(now),
        public_addr: node.public_addr(),
        reached: node.has_been_reached(),
        stored_infohashes: node.storage().infohash_count(),
        stored_items: node.storage().item_count(),
    }
}

/// The task: one loop over the socket, the commands and the node's timer.
async fn run(
    socket: UdpSocket,
    mut node: Node<StdRng>,
    mut commands: mpsc::Receiver<Command>,
    local_addr: SocketAddrV4,
) {
    // One byte more than the codec reads, so an oversized datagram is seen as such and dropped.
    let mut buf = vec![0u8; crate::bencode::MAX_INPUT + 1];
    let mut waiting: HashMap<QueryId, oneshot::Sender<Outcome>> = HashMap::new();
    loop {
        while let Some(t) = node.poll_transmit() {
            if let Err(error) = socket.send_to(&t.bytes, SocketAddr::V4(t.to)).await {
                tracing::debug!(%error, to = %t.to, "DHT send failed");
            }
        }
        while let Some(event) = node.poll_event() {
            if let Some(reply) = waiting.remove(&event.query) {
                let _ = reply.send(event.outcome);
            }
        }
        let wake = node
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(60));
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, SocketAddr::V4(from))) => {
                    if let Some(bytes) = buf.get(..len) {
                        node.handle_packet(Instant::now().into_std(), from, bytes);
                    }
                }
                Ok((_, SocketAddr::V6(_))) => {}
                Err(error) => {
                    // Linux reports ICMP errors of earlier sends here; they concern no one query.
                    tracing::trace!(%error, "DHT receive error");
                }
            },
            command = commands.recv() => match command {
                None => break,
                Some(Command::Find(request, reply)) => {
                    let query = start(&mut node, Instant::now().into_std(), request);
                    waiting.insert(query, reply);
                }
                Some(Command::Info(reply)) => {
                    let _ = reply.send(info(&node, local_addr));
                }
                Some(Command::RoutingNodes(reply)) => {
                    let own = node.id();
                    let nodes = node
                        .routing_table()
                        .closest(&own, usize::MAX)
                        .into_iter()
                        .map(|n| n.addr)
                        .collect();
                    let _ = reply.send(nodes);
                }
            },
            () = tokio::time::sleep_until(wake) => {
                node.handle_timeout(Instant::now().into_std());
            }
        }
    }
}
