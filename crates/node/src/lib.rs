//! kolokol-node: composes the catalog, the wire protocol and the BitTorrent engine into a node, and offers the
//! [`Api`] that the HTTP layer serves.
//!
//! Architecture invariant: this is the only crate that knows every subsystem. Upper layers (HTTP, CLI) talk to
//! [`Api`] only; lower crates never depend on this one.
//!
//! Every record from outside (the wire today, bundles later) goes through `kolokol_core::record::validate_record`
//! in [`peering`] before it is stored; records this node makes go through `sign_record`, which applies the same
//! bounds.

mod admission;
mod api;
mod bundle;
mod cache;
mod catalog;
mod clock;
mod config;
mod data_dir;
mod discovery;
mod durable;
mod error;
mod fetch;
mod holdings_api;
mod identities;
mod identity;
mod keyfile;
mod keystore;
mod mirroring;
mod node;
mod peering;
mod peers;
mod ports;
mod presence;
mod proving;
mod proxy;
mod publish;
mod publish_plan;
mod reconciling;
mod record_policy;
mod relaying;
mod replicas;
mod replication;
mod rotation;
mod start_error;
mod stream;
mod tasks;
mod torrent_file;
pub mod units;
mod upload;
mod views;
mod wire_identity;

pub use admission::{AdmissionConfig, RefusedView};
pub use api::{Api, MAX_LIST, SearchRequest};
pub use bundle::{
    BundleExportRequest, BundleExportView, BundleImportRequest, BundleImportView, BundleItemView,
    DamagedFileView,
};
pub use config::{
    CacheOptions, DEFAULT_API_ADDR, DEFAULT_CACHE_QUOTA, DEFAULT_NETWORK, DiscoveryConfig,
    NodeConfig, ReplicationConfig,
};
pub use data_dir::{DataDir, DataDirError, DataPaths, api_addr_path, token_path};
pub use error::{ApiError, KeptMetadata};
pub use holdings_api::{PinView, ReplicaView, SharingView};
pub use keyfile::{KeyFileError, MAX_PASSPHRASE_BYTES, Passphrase};
pub use keystore::{
    DEFAULT_IDENTITY, IdentityName, IdentityView, Keystore, KeystoreError, MAX_IDENTITY_NAME,
};
pub use node::Node;
pub use presence::PresenceError;
pub use proxy::{
    BridgeOptions, BridgeServerView, BridgeView, InvitationInfoView, InvitationView, MAX_BRIDGES,
    MAX_INVITATIONS, ProxyApi, ProxyOptions, ProxyStartError, ProxyStatusView, SavedError,
    SavedFileDamage, SiteView,
};
pub use publish::PublishRequest;
pub use start_error::StartError;
pub use stream::{FileInfo, FileStream, OpenFile};
pub use torrent_file::{MAX_TORRENT_FILE_BYTES, TorrentFile};
pub use upload::{
    MAX_PENDING_UPLOADS, MAX_UPLOAD_BYTES, StorageView, Upload, UploadPublishRequest,
};
pub use views::{
    BlockedView, FileView, FollowView, IdView, PeerView, PublishedView, RecordView, StatusView,
    TransferView,
};
