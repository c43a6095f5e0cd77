//! Proven replicas: a peer's `Holding` claim counts (towards announcing a fresh publication, towards a mirror's
//! rarity, in `status ID`) only once the peer answered a challenge that needs the data. The decisions (what to
//! challenge, which ranges, whether a proof checks, one counted holder per address prefix) are core's
//! `HolderProofs`, owned by `replicas::Replication`; this module carries them out:
//!
//! - [`on_holding`]: a claim for a publication we hold complete (and may be known to hold) is handed to the
//!   machine; a claim we cannot check is not counted, only remembered until a download of ours completes it
//!   (`fetch.rs` tells the owner, `Replication::now_held`).
//! - [`spawn`]: one task sends the machine's challenges (after computing the expected digest from our own copy),
//!   tells a publisher push of every counted proof, and cuts off (disconnect and ban, as for any misconduct) a
//!   peer whose proof was wrong or did not come within the deadline.
//! - [`answer`]: the other side: a challenge for data we hold complete and may say we hold is answered from our
//!   files; anything else is declined, so a challenge cannot be used to learn what a reader watched.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use kolokol_core::keys::NodeId;
use kolokol_core::record::InfoHash;
use kolokol_core::replication::proof::{
    ByteRange, Challenge, ProofEvent, locate, proof_digest, ranges_fit,
};
use kolokol_store::{TorrentRow, TorrentState};
use kolokol_transfer::metainfo::{TorrentLayout, torrent_layout};
use kolokol_wire::Message;

use crate::clock::unix_now;
use crate::replicas::PushEvent;
use crate::replication::Replicator;

/// The proof task wakes at least this often (deadlines are also scheduled exactly).
const IDLE: Duration = Duration::from_secs(5);

/// A peer claims complete copies of these publications: those we hold complete ourselves, and would say so, are
/// challenged. (The claim of a publication this node is pushing is challenged too: only peers we asked know it.)
pub(crate) async fn on_holding(replicator: &Replicator, from: &NodeId, infohashes: Vec<[u8; 20]>) {
    let pushing = replicator.replication.pushing();
    let cache = replicator.cache.clone();
    let checked = replicator
        .catalog
        .run(move |catalog| {
            let (mut claims, mut unchecked) = (Vec::new(), Vec::new());
            for infohash in infohashes.into_iter().map(InfoHash) {
                let ours = catalog.get_torrent(&infohash)?.is_some_and(|row| {
                    row.state == TorrentState::Complete
                        && (cache.advertises(&row) || pushing.contains(&infohash))
                });
                let total = match ours {
                    true => catalog
                        .records_by_infohash(&infohash)?
                        .first()
                        .map(|record| record.body().total_size()),
                    false => None,
                };
                match total {
                    Some(total) => claims.push((infohash, total)),
                    None => unchecked.push(infohash),
                }
            }
            Ok((claims, unchecked))
        })
        .await;
    match checked {
        Ok((claims, unchecked)) => {
            replicator.replication.unchecked_claims(from, &unchecked);
            if !claims.is_empty() {
                replicator.replication.claims(from, &claims);
            }
        }
        Err(error) => tracing::debug!(%error, "cannot check a holding claim"),
    }
}

/// A peer answered one of our challenges.
pub(crate) fn on_proof(replicator: &Replicator, from: &NodeId, id: u64, digest: [u8; 32]) {
    replicator
        .replication
        .proof_received(from, id, digest, unix_now());
}

/// Run the challenges for the node's lifetime.
pub(crate) fn spawn(replicator: Replicator) {
    let tasks = replicator.tasks.clone();
    tasks.spawn("replica proofs", async move {
        loop {
            loop {
                let event = {
                    // A fresh OS-seeded CSPRNG per draw: nonces must not be predictable.
                    let mut rng = rand::rng();
                    replicator.replication.poll_proof(unix_now(), &mut rng)
                };
                let Some(event) = event else { break };
                carry_out(&replicator, event).await;
            }
            let wait = replicator
                .replication
                .next_proof_timeout()
                .map_or(IDLE, |at| {
                    Duration::from_secs(at.saturating_sub(unix_now())).min(IDLE)
                });
            tokio::select! {
                _ = replicator.tasks.cancelled() => return,
                _ = replicator.replication.proof_woken() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

async fn carry_out(replicator: &Replicator, event: ProofEvent<NodeId>) {
    match event {
        ProofEvent::Challenge { peer, challenge } => {
            send_challenge(replicator, peer, challenge).await
        }
        ProofEvent::Proven {
            peer,
            infohash,
            counted,
        } => {
            tracing::debug!(%peer, %infohash, counted, "a peer proved it holds a publication");
            if counted && let Some(push) = replicator.replication.push_of(&infohash) {
                let _ = push.try_send(PushEvent::Holding(peer));
            }
        }
        ProofEvent::Failed {
            peer,
            infohash,
            failure,
        } => {
            tracing::warn!(%peer, ?failure, "a peer claimed a publication it could not prove; cut off");
            tracing::debug!(%peer, %infohash, ?failure, "failed replica proof");
            // A push that asked it asks another peer now instead of waiting out the ask.
            if let Some(push) = replicator.replication.push_of(&infohash) {
                let _ = push.try_send(PushEvent::Declined(peer));
            }
            replicator
                .peers
                .cut_off(&peer, replicator.started.elapsed());
        }
    }
}

async fn send_challenge(replicator: &Replicator, peer: NodeId, challenge: Challenge) {
    let id = challenge.id;
    match expected_digest(replicator, &challenge).await {
        Some(expected) => replicator.replication.armed(id, expected),
        None => {
            tracing::debug!(infohash = %challenge.infohash, "cannot read our copy to challenge a claim");
            replicator.replication.abandon(id);
            return;
        }
    }
    let message = Message::Challenge {
        id,
        infohash: challenge.infohash.0,
        nonce: challenge.nonce,
        ranges: challenge.ranges,
    };
    if !replicator.peers.send_to(&peer, message) {
        replicator.replication.abandon(id);
    }
}

/// What the answer must be, from our own copy.
async fn expected_digest(replicator: &Replicator, challenge: &Challenge) -> Option<[u8; 32]> {
    let infohash = challenge.infohash;
    let row = replicator
        .catalog
        .run(move |c| c.get_torrent(&infohash))
        .await
        .ok()??;
    if row.state != TorrentState::Complete {
        return None;
    }
    let bytes = read_challenged(replicator, row, challenge.ranges.clone()).await?;
    proof_digest(&challenge.nonce, &infohash, &challenge.ranges, &bytes)
}

/// A peer challenges us: answer from our copy if we hold it complete and may say so; decline otherwise.
pub(crate) async fn answer(replicator: &Replicator, challenge: Challenge) -> Message {
    let infohash = challenge.infohash;
    let decline = Message::Decline {
        infohash: infohash.0,
    };
    // A publication we are still pushing is not ours to confirm yet; what the reader watched is not confirmed
    // unless they share it (the peer could ask everyone about a known video).
    if replicator.replication.pushing().contains(&infohash) {
        return decline;
    }
    let row = match replicator
        .catalog
        .run(move |c| c.get_torrent(&infohash))
        .await
    {
        Ok(Some(row))
            if row.state == TorrentState::Complete && replicator.cache.advertises(&row) =>
        {
            row
        }
        _ => return decline,
    };
    match read_challenged(replicator, row, challenge.ranges.clone())
        .await
        .and_then(|bytes| proof_digest(&challenge.nonce, &infohash, &challenge.ranges, &bytes))
    {
        Some(digest) => Message::Proof {
            id: challenge.id,
            digest,
        },
        None => decline,
    }
}

/// Read the challenged ranges of a complete torrent's piece stream from disk. `None` when the ranges do not fit it
/// or a file cannot be read.
async fn read_challenged(
    replicator: &Replicator,
    row: TorrentRow,
    ranges: Vec<ByteRange>,
) -> Option<Vec<Vec<u8>>> {
    let layout = torrent_layout(row.torrent.as_deref()?).ok()?;
    if layout.infohash != row.infohash.0 {
        return None;
    }
    let total = layout
        .files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.length))?;
    if !ranges_fit(&ranges, total) {
        return None;
    }
    replicator
        .tasks
        .spawn_blocking("read challenged ranges", move || {
            read_ranges(&row.output_dir, &layout, &ranges)
        })
        .await
        .ok()?
        .ok()
}

/// The bytes of each range, files in torrent order, padding files as zeros (they are never stored).
fn read_ranges(
    dir: &Path,
    layout: &TorrentLayout,
    ranges: &[ByteRange],
) -> std::io::Result<Vec<Vec<u8>>> {
    let lengths: Vec<u64> = layout.files.iter().map(|f| f.length).collect();
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let mut bytes = Vec::with_capacity(range.len as usize);
        for (index, offset, len) in locate(&lengths, *range) {
            let file = &layout.files[index];
            // `len` is within one range, at most `MAX_RANGE_LEN`.
            let len = usize::try_from(len).map_err(std::io::Error::other)?;
            if file.padding {
                bytes.resize(bytes.len() + len, 0);
                continue;
            }
            let mut f = File::open(file_path(dir, layout, &file.components))?;
            f.seek(SeekFrom::Start(offset))?;
            let start = bytes.len();
            bytes.resize(start + len, 0);
            f.read_exact(&mut bytes[start..])?;
        }
        if bytes.len() != range.len as usize {
            return Err(std::io::Error::other("range outside the data"));
        }
        out.push(bytes);
    }
    Ok(out)
}

/// Where a torrent file lives: `<dir>/<name>` for the single-file form, `<dir>/<name>/<components...>` otherwise
/// (the components were checked safe by `torrent_layout`).
fn file_path(dir: &Path, layout: &TorrentLayout, components: &[String]) -> PathBuf {
    let mut path = dir.join(&layout.name);
    if !layout.single_file {
        for component in components {
            path.push(component);
        }
    }
    path
}
