//! Command-line shape. Every flag can also come from a `KOLOKOL_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kolokol",
    version,
    about = "Peer-to-peer publishing that keeps working when the Internet is censored or cut off",
    after_help = "Run `kolokol up` to start a node; the other commands talk to a running node.",
    // A flag given twice (say in KOLOKOL_* defaults of a script and again by hand): the last one wins.
    args_override_self = true
)]
pub struct Cli {
    /// Address of the node's HTTP API. `up --api 127.0.0.1:0` listens on a port the system picks (so that web pages
    /// cannot find the node at a known port); other commands then read the address from the data directory.
    /// Default: for `up` 127.0.0.1:7411; for other commands the running node's address in the data directory, else
    /// 127.0.0.1:7411.
    #[arg(long, global = true, env = "KOLOKOL_API")]
    pub api: Option<SocketAddr>,

    /// Data directory of the node (default: the per-user data directory). Client commands read the API token here.
    #[arg(long, global = true, env = "KOLOKOL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON (shapes in docs/cli.md).
    #[arg(long, global = true, env = "KOLOKOL_JSON")]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground until Ctrl-C (SIGINT) or SIGTERM.
    Up(Box<UpArgs>),
    /// Print this node's ids (node id and author id).
    Id,
    /// Print the node's state and addresses; with a publication id, how many known peers hold a full copy of it.
    Status {
        /// Publication id.
        id: Option<String>,
    },
    /// Keep a publication's data whatever the quota (fetching it if it is not here yet).
    Pin {
        /// Publication id.
        id: String,
    },
    /// Let the quota evict a pinned publication's data again.
    Unpin {
        /// Publication id.
        id: String,
    },
    /// Publish files or directories: hash, sign, store and seed them.
    Publish(PublishArgs),
    /// Author identities: separate author keys (one per sensitive publication, if you wish), optionally locked with
    /// a passphrase. These commands work on the data directory, with the node running or stopped.
    #[command(subcommand)]
    Identity(crate::identity_cmd::IdentityCommand),
    /// List the publications in this node's catalog, newest first.
    List(ListArgs),
    /// Search this node's catalog (works offline): words in titles, descriptions and tags, with filters.
    Search(SearchArgs),
    /// Show one publication.
    Show {
        /// Publication id.
        id: String,
    },
    /// Download a publication (by id), a magnet link or a .torrent file, and wait until it is complete and verified.
    Get(GetArgs),
    /// Write a publication's .torrent file (for any BitTorrent client). The node must hold the publication's metadata:
    /// it does for what it published or downloaded.
    Torrent(TorrentArgs),
    /// Manage kolokol peers.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// List known and connected kolokol peers.
    Peers,
    /// Follow an author: their new publications are found through the DHT and fetched from peers.
    Follow {
        /// Author id (64 hex characters).
        author: String,
    },
    /// Stop following an author.
    Unfollow {
        /// Author id.
        author: String,
    },
    /// List followed authors.
    Following,
    /// Block an author: hide them everywhere, purge their records and data from this node, refuse them on sync.
    Block {
        /// Author id.
        author: String,
    },
    /// Lift a block.
    Unblock {
        /// Author id.
        author: String,
    },
    /// List blocked authors.
    Blocked,
    /// Bridges: invite people to this node's bridge, or use bridges others invited you to.
    #[command(subcommand)]
    Bridge(crate::proxy_cmd::BridgeCommand),
    /// The local proxy that reaches blocked sites (SOCKS5 and HTTP, `--proxy` of `up`).
    #[command(subcommand)]
    Proxy(crate::proxy_cmd::ProxyCommand),
    /// Bundles: publications and their data in one file, to carry on a USB stick when the network is gone.
    #[command(subcommand)]
    Bundle(crate::bundle_cmd::BundleCommand),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// BitTorrent listen address (default: all interfaces, a port chosen on first start and kept).
    #[arg(long, env = "KOLOKOL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// kolokol wire protocol listen address (default: all interfaces, a port chosen on first start and kept).
    #[arg(long, env = "KOLOKOL_WIRE")]
    pub wire: Option<SocketAddr>,
    /// Network name: nodes of different networks never exchange records.
    #[arg(long, env = "KOLOKOL_NETWORK", default_value = kolokol_node::DEFAULT_NETWORK)]
    pub network: String,
    /// DHT UDP address, IPv4 (default: all interfaces, a port chosen on first start and kept).
    #[arg(long, env = "KOLOKOL_DHT")]
    pub dht: Option<SocketAddr>,
    /// DHT bootstrap nodes, HOST:PORT, comma-separated (used after the routing table saved on the last run).
    #[arg(long, env = "KOLOKOL_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Vec<String>,
    /// Never contact the public BitTorrent DHT routers: only configured nodes and what they lead to.
    #[arg(long, env = "KOLOKOL_NO_DEFAULT_BOOTSTRAP")]
    pub no_default_bootstrap: bool,
    /// Do not announce on or listen to the local network (multicast).
    #[arg(long, env = "KOLOKOL_NO_LAN")]
    pub no_lan: bool,
    /// Announce on and listen to the LAN only on the interface with this IPv4 address (repeat for several;
    /// default: every non-loopback interface).
    #[arg(
        long = "lan-interface",
        env = "KOLOKOL_LAN_INTERFACE",
        value_delimiter = ','
    )]
    pub lan_interfaces: Vec<std::net::Ipv4Addr>,
    /// Be a full DHT node (in other nodes' routing tables), also on the public DHT. Without it: a full node with
    /// --no-default-bootstrap (a network of kolokol nodes only, where nobody else answers), otherwise read-only
    /// (BEP 43), answering only the queries sent to it directly.
    #[arg(long, env = "KOLOKOL_DHT_SERVER")]
    pub dht_server: bool,
    /// How long to wait for one DHT node's answer, in milliseconds (a lookup that asks a node that never answers
    /// lasts at least this long).
    #[arg(long, env = "KOLOKOL_DHT_TIMEOUT_MS",
          default_value_t = kolokol_node::DiscoveryConfig::default().dht_request_timeout.as_millis() as u64)]
    pub dht_timeout_ms: u64,
    /// Seconds between rendezvous rounds (announce and look up the network's nodes on the DHT) while connected to
    /// a kolokol peer; with none, after 1 s, then twice as long each time up to 30 s (or this, if shorter).
    #[arg(long, env = "KOLOKOL_RENDEZVOUS_SECS", default_value_t = 600)]
    pub rendezvous_secs: u64,
    /// Seconds between reads of followed authors' feed heads.
    #[arg(long, env = "KOLOKOL_FEED_POLL_SECS", default_value_t = 300)]
    pub feed_poll_secs: u64,
    /// kolokol connections to keep.
    #[arg(long, env = "KOLOKOL_PEERS", default_value_t = 8)]
    pub peers: usize,
    /// Most inbound kolokol connections.
    #[arg(long, env = "KOLOKOL_MAX_INBOUND", default_value_t = 32)]
    pub max_inbound: usize,
    /// Proof-of-work difficulty of the network in bits (all nodes of a network use the same): publishing costs about
    /// 2^bits hashes, and records from others with less work are refused. At most 32.
    #[arg(long, env = "KOLOKOL_WORK_BITS", default_value_t = kolokol_core::record::DEFAULT_WORK_BITS,
          value_parser = clap::value_parser!(u8).range(0..=i64::from(kolokol_core::record::MAX_WORK_BITS)))]
    pub work_bits: u8,
    /// Seconds between catalog reconciliations with a random connected peer.
    #[arg(long, env = "KOLOKOL_RECONCILE_SECS", default_value_t = 60)]
    pub reconcile_secs: u64,
    /// Records one author may add to this node's catalog per hour (records from other nodes).
    #[arg(long, env = "KOLOKOL_AUTHOR_RATE", default_value_t = 60)]
    pub author_rate: u64,
    /// Records of one author this node's catalog holds at most.
    #[arg(long, env = "KOLOKOL_AUTHOR_MAX", default_value_t = 10_000)]
    pub author_max: u64,
    /// Connected peers that learn of each new record: sent whole when published here, announced by id when relayed
    /// (0: only reconciliation spreads records).
    #[arg(long, env = "KOLOKOL_PUSH_FANOUT", default_value_t = 8)]
    pub push_fanout: usize,
    /// Most bytes per second BitTorrent may download, e.g. 500K or 2M (K = 1024; at least 64K). Default: no limit.
    #[arg(long, env = "KOLOKOL_DOWNLOAD_LIMIT", value_parser = kolokol_node::units::parse_size)]
    pub download_limit: Option<u64>,
    /// Most bytes per second BitTorrent may upload, e.g. 500K or 2M (K = 1024; at least 64K). Default: no limit.
    #[arg(long, env = "KOLOKOL_UPLOAD_LIMIT", value_parser = kolokol_node::units::parse_size)]
    pub upload_limit: Option<u64>,
    /// Seconds the streaming gateway waits for data that no peer sends before it answers 504.
    #[arg(long, env = "KOLOKOL_STREAM_TIMEOUT_SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub stream_timeout_secs: u64,
    /// Connected peers asked to hold a full copy of a fresh publication before it is announced (0: announce at
    /// once, making this node its first and only seeder).
    #[arg(long, env = "KOLOKOL_REPLICAS", default_value_t = 3)]
    pub replicas: usize,
    /// Announce a fresh publication anyway after this many seconds without a confirmed replica.
    #[arg(long, env = "KOLOKOL_ANNOUNCE_TIMEOUT_SECS", default_value_t = 600)]
    pub announce_timeout_secs: u64,
    /// Mirror mode: fetch new publications on our own (followed authors first, then the rarest, then the newest)
    /// and seed them, within --quota.
    #[arg(long, env = "KOLOKOL_MIRROR")]
    pub mirror: bool,
    /// Disk space for others' publications (what a mirror fetches and a viewer watched), e.g. 500M, 20G. Over it,
    /// the least recently requested unpinned data is evicted. Own publications and pins always stay.
    #[arg(long, env = "KOLOKOL_QUOTA", default_value = "5G", value_parser = kolokol_node::units::parse_size)]
    pub quota: u64,
    /// Tell the DHT and peers that this node holds what its user downloads, streams or imports, so others find it
    /// as a seeder. Off by default except with --mirror: what a reader watches is then served to peers that ask for
    /// it but announced to nobody, so nobody gets a list of who watched what. Not given: the web UI's setting.
    #[arg(long, env = "KOLOKOL_SHARE_WATCHED", num_args = 0..=1, default_missing_value = "true",
          value_name = "true|false")]
    pub share_watched: Option<bool>,
    #[command(flatten)]
    pub proxy: crate::proxy_cmd::ProxyUpArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Files or directories to publish.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Title of the publication.
    #[arg(long)]
    pub title: String,
    /// Longer description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Language of the publication, e.g. ru or en.
    #[arg(long)]
    pub lang: Option<String>,
    /// Publish the files exactly as they are. By default metadata is removed without re-encoding: EXIF, XMP, IPTC
    /// and GPS from JPEG, PNG and WebP; metadata boxes (with location) from MP4/MOV; the Info dictionary and XMP from
    /// PDF; ID3 tags from MP3; comments and pictures from FLAC, Ogg Vorbis and Ogg Opus; tags from MKV/WebM; comments
    /// and XMP from GIF.
    #[arg(long)]
    pub keep_metadata: bool,
    /// Publish files that would keep metadata after scrubbing (HEIC, TIFF, office documents, encrypted PDF,
    /// unknown formats...). Without it, such a publish is refused before anything is signed, naming each file and
    /// what it would keep.
    #[arg(long)]
    pub allow_metadata: bool,
    /// Publish files under their own names and folder structure. By default they are named by type and order
    /// (`video.mp4`, `photo-1.jpg`, `document.pdf`) in one folder named after the title. Hidden files and folders
    /// (`.git`, `.DS_Store`) inside folders are never published.
    #[arg(long)]
    pub keep_names: bool,
    /// A small image (JPEG, PNG, WebP or GIF, at most 32 KiB) shown as the publication's thumbnail.
    #[arg(long)]
    pub thumbnail: Option<PathBuf>,
    /// Sign with this author identity (`kolokol identity list`) instead of the default one. An unknown or locked
    /// identity is refused before anything is published.
    #[arg(long = "as", value_name = "NAME")]
    pub identity: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// At most this many records.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Skip this many of the newest records.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for (prefix match, any case); may be empty when filters are given.
    #[arg(default_value = "")]
    pub query: String,
    /// Only this author's publications (author id).
    #[arg(long)]
    pub author: Option<String>,
    /// Only publications with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only publications in this language.
    #[arg(long)]
    pub lang: Option<String>,
    /// Only publications created since this time: Unix seconds or a date YYYY-MM-DD (UTC).
    #[arg(long, value_parser = kolokol_node::units::parse_since)]
    pub since: Option<u64>,
    /// Only this kind of media: video, audio, image, text or other.
    #[arg(long)]
    pub media: Option<String>,
    /// At most this many results.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Skip this many results.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

#[derive(Debug, Args)]
pub struct TorrentArgs {
    /// Publication id.
    pub id: String,
    /// The file to write (`-` for standard output). An existing file is not overwritten.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// A publication id, a magnet link, or a .torrent file (a path that ends in .torrent or names an existing file).
    pub target: String,
    /// Download into this directory instead of the node's data directory.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Give up waiting after this many seconds (the node keeps downloading).
    #[arg(long)]
    pub timeout: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Connect to a kolokol node at its wire address (`status` shows it as wire_addr) and remember it.
    Add {
        /// HOST:PORT
        addr: String,
    },
}
