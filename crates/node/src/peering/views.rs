//! What `peer list` shows: every known peer (from the catalog) and every connected one.

use kolokol_core::keys::NodeId;

use super::Peering;
use crate::clock::unix_now;
use crate::error::ApiError;
use crate::views::PeerView;

pub(super) fn view_connected(peering: &Peering, addr: &str, id: NodeId) -> PeerView {
    let connections = peering.peers.connections();
    let peer = connections.iter().find(|c| c.id == id);
    PeerView {
        addr: addr.to_owned(),
        node_id: Some(id.to_string()),
        connected: peer.is_some(),
        direction: peer.map(|p| direction(p.outbound)),
        bt_addr: peer.and_then(|p| p.bt_addr).map(|a| a.to_string()),
        added_by_user: true,
        last_seen: Some(unix_now()),
        last_error: None,
    }
}

/// Every known peer (from the catalog) and every connected one.
pub(crate) async fn peer_views(peering: &Peering) -> Result<Vec<PeerView>, ApiError> {
    let known = peering.catalog.run(|c| c.list_peers()).await?;
    let connections = peering.peers.connections();
    let mut views = Vec::new();
    let mut shown = std::collections::HashSet::new();
    for row in known {
        // The cache knows addresses only; the id shown is the one of the live connection, if any.
        let live = connections.iter().find(|c| c.addr == row.addr);
        if let Some(c) = live {
            shown.insert(c.id);
        }
        views.push(PeerView {
            addr: row.addr,
            node_id: live.map(|c| c.id.to_string()),
            connected: live.is_some(),
            direction: live.map(|c| direction(c.outbound)),
            bt_addr: live.and_then(|c| c.bt_addr).map(|a| a.to_string()),
            added_by_user: row.by_user,
            last_seen: row.last_seen,
            last_error: if live.is_some() { None } else { row.last_error },
        });
    }
    for c in connections.iter().filter(|c| !shown.contains(&c.id)) {
        views.push(PeerView {
            addr: c.addr.clone(),
            node_id: Some(c.id.to_string()),
            connected: true,
            direction: Some(direction(c.outbound)),
            bt_addr: c.bt_addr.map(|a| a.to_string()),
            added_by_user: false,
            last_seen: Some(unix_now()),
            last_error: None,
        });
    }
    Ok(views)
}

fn direction(outbound: bool) -> String {
    if outbound { "outbound" } else { "inbound" }.to_owned()
}
