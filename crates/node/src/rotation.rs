//! The driver that renews the node's wire identity when core's `RotationPolicy` says so: at least once a day, and
//! when the node's own addresses change (another network). It reads the wall clock and the interfaces; the policy
//! decides.
//!
//! What a renewal does, in order:
//! 1. the owner (`wire_identity`) makes a new key: every handshake from now on proves it, and the LAN announcer
//!    (told through `WireIdentity::subscribe`) announces a new instance at once;
//! 2. the overlay learns that the new id is ourselves;
//! 3. every open connection is closed, since each was authenticated with the old key and the old identity must not
//!    stay in use. Handshakes that began before the renewal are dropped when they finish (`peering` checks
//!    `WireIdentity::is_current`). The overlay then dials its peers again with the new key, and peers that had
//!    dialled us dial again from their side; records missed meanwhile come back through reconciliation.
//!
//! The old key is dropped with the last connection that used it; it was never on disk.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kolokol_core::rotation::{DEFAULT_MAX_AGE, RotationPolicy, RotationReason};

use crate::clock::unix_now;
use crate::peers::PeerRegistry;
use crate::tasks::Tasks;
use crate::wire_identity::WireIdentity;

/// How often the node's addresses are looked at: on a new network the old identity is in use for at most about this
/// long (and only if a connection is made in that time).
const ADDRESS_CHECK: Duration = Duration::from_secs(10);

/// What the rotation driver uses. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Rotation {
    pub tasks: Tasks,
    pub identity: Arc<WireIdentity>,
    pub peers: Arc<PeerRegistry>,
}

/// Check the policy every [`ADDRESS_CHECK`] until shutdown, renewing the identity when it says so.
pub(crate) fn spawn(rotation: Rotation) {
    let tasks = rotation.tasks.clone();
    tasks.spawn("wire identity rotation", async move {
        let Ok(mut policy) = RotationPolicy::new(DEFAULT_MAX_AGE, now(), addresses()) else {
            // DEFAULT_MAX_AGE is not zero; this cannot happen, and a node without rotation would be unsafe.
            tracing::error!("the wire identity rotation could not start");
            return;
        };
        loop {
            tokio::select! {
                _ = rotation.tasks.cancelled() => return,
                _ = tokio::time::sleep(ADDRESS_CHECK) => {}
            }
            if let Some(reason) = policy.check(now(), &addresses()) {
                renew(&rotation, reason);
            }
        }
    });
}

/// Renew the identity now (see the module documentation).
pub(crate) fn renew(rotation: &Rotation, reason: RotationReason) {
    let id = rotation.identity.renew();
    rotation.peers.overlay().set_own_node(id);
    let closed = rotation.peers.connected_count();
    rotation.peers.close_all();
    tracing::info!(
        ?reason,
        closed,
        "wire identity renewed; connections made with the old one are closed and will be made again"
    );
}

/// The wall clock: it keeps counting while the machine sleeps (a monotonic clock does not), so a laptop that slept
/// through the night still gets a new identity in the morning.
fn now() -> Duration {
    Duration::from_secs(unix_now())
}

fn addresses() -> BTreeSet<IpAddr> {
    kolokol_discovery::local_addresses()
}
