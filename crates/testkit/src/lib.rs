//! Test support shared by kolokol's crates. A dev-dependency only: no production crate depends on it.
//!
//! - [`peers`]: where the reference-peer drivers live (`crates/testkit/peers/*.py`, found from this crate's own
//!   folder, so any clone of the repository has them) and the checks that their programs are installed.
//! - [`libtorrent`]: Debian's libtorrent (python3-libtorrent) as an independent BitTorrent seeder, leecher,
//!   torrent maker and private DHT testnet on 127.0.0.1.
//! - [`aria2`]: aria2c as an independent BitTorrent client on 127.0.0.1.
//! - [`process`]: `kolokol up` node processes (on loopback or in a network namespace) driven through the CLI.
//! - [`netns`]: network namespaces a test creates and always removes (`ip netns`, or `unshare -n` for a
//!   loopback-only one); [`censor_net`]: the censored client / router / outside network of the proxy tests;
//!   [`censor`]: a filter in that network whose rules (fully-encrypted traffic, freeze, whitelist, QUIC, active
//!   probing) the tests switch on one by one.
//! - [`records`]: signed test records.
//!
//! Every driver binds 127.0.0.1 only and ends by itself (a lifetime or timeout bound), so a test that is killed
//! leaves nothing running for long; the Rust handles also kill their process when dropped. The checks fail (they
//! never skip) when a program is missing: `scripts/test.sh` installs them.

pub mod aria2;
pub mod censor;
pub mod censor_net;
pub mod libtorrent;
pub mod netns;
pub mod peers;
pub mod process;
pub mod records;

pub use peers::PeerError;
