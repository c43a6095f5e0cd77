//! Piece transfers. A fetch asks online holders for pieces it lacks, up to [`REQUESTS_PER_FETCH`] at once and
//! [`DOWNLOAD_SLOTS`] per node; a holder serves at most [`UPLOAD_SLOTS`] pieces at once. A piece takes
//! `piece_bytes / min(upload rate / UPLOAD_SLOTS, download rate / DOWNLOAD_SLOTS)` plus a round trip. The
//! source is the first online holder with a free slot and a wanted piece, in random order; the piece is the
//! one fewest online nodes hold (rarest first). A node going offline aborts its transfers and keeps its disk;
//! its fetches pause and resume when it returns. A fetch that finds no source with a free slot for `stall_timeout` of online
//! time fails, and its partial data is deleted. Free download slots go to the node's fetches in turn, a piece each.

use std::time::Duration;

use super::config::{DOWNLOAD_SLOTS, REQUESTS_PER_FETCH, RETRY_SOURCES, UPLOAD_SLOTS};
use super::world::{Download, ReplicationWorld, Reply};

/// One piece on its way.
pub(super) struct Transfer {
    src: u32,
    dst: u32,
    publication: u32,
    piece: u32,
}

impl ReplicationWorld {
    /// Brings a node online or offline, keeping piece availability and transfers right.
    pub(super) fn set_online(&mut self, node: u32, online: bool) {
        if self.nodes[node as usize].online == online {
            return;
        }
        if !online {
            let transfers: Vec<u64> = self.nodes[node as usize]
                .transfers
                .iter()
                .copied()
                .collect();
            for id in transfers {
                self.abort(id);
            }
            let asked: Vec<u32> = self.nodes[node as usize]
                .downloads
                .iter()
                .filter(|(_, d)| d.for_push)
                .map(|(p, _)| *p)
                .collect();
            for publication in asked {
                self.reply(publication, node, Reply::Gone);
            }
        }
        let held: Vec<(u32, u64)> = self.nodes[node as usize]
            .pieces
            .iter()
            .map(|(p, m)| (*p, *m))
            .collect();
        for (publication, mask) in held {
            self.count_online(publication, mask, online);
        }
        let now = self.now();
        let n = &mut self.nodes[node as usize];
        n.online = online;
        n.pump_at = None;
        if online {
            for download in n.downloads.values_mut() {
                download.no_source_since = None;
            }
            self.schedule_pump(node, now);
            if self.nodes[node as usize].mirror {
                self.apply_policy(node);
            }
        }
    }

    /// Adds or removes one node's pieces to the publication's online counts.
    fn count_online(&mut self, publication: u32, mask: u64, add: bool) {
        let p = &mut self.publications[publication as usize];
        for piece in 0..p.pieces {
            if mask & (1 << piece) != 0 {
                let count = &mut p.avail[piece as usize];
                *count = if add {
                    *count + 1
                } else {
                    count.saturating_sub(1)
                };
            }
        }
        if mask == p.full_mask() {
            p.online_full = if add {
                p.online_full + 1
            } else {
                p.online_full.saturating_sub(1)
            };
        }
    }

    /// Puts pieces on a node's disk.
    pub(super) fn add_pieces(&mut self, node: u32, publication: u32, mask: u64) {
        let old = self.nodes[node as usize].pieces.get(&publication).copied();
        let new = old.unwrap_or(0) | mask;
        if old == Some(new) {
            return;
        }
        let online = self.nodes[node as usize].online;
        if online && let Some(old) = old {
            self.count_online(publication, old, false);
        }
        if old.is_none() {
            self.publications[publication as usize].holders.push(node);
        }
        self.nodes[node as usize].pieces.insert(publication, new);
        if online {
            self.count_online(publication, new, true);
        }
    }

    /// Deletes a node's data of a publication.
    pub(super) fn remove_pieces(&mut self, node: u32, publication: u32) {
        let Some(mask) = self.nodes[node as usize].pieces.remove(&publication) else {
            return;
        };
        if self.nodes[node as usize].online {
            self.count_online(publication, mask, false);
        }
        self.publications[publication as usize]
            .holders
            .retain(|h| *h != node);
    }

    /// Starts fetching a publication (nothing if it is already on disk or on its way).
    pub(super) fn start_download(&mut self, node: u32, publication: u32, for_push: bool) {
        let full = self.publications[publication as usize].full_mask();
        let now = self.now();
        let n = &mut self.nodes[node as usize];
        if n.downloads.contains_key(&publication) || n.pieces.get(&publication) == Some(&full) {
            return;
        }
        n.downloads.insert(
            publication,
            Download {
                inflight: 0,
                no_source_since: None,
                for_push,
            },
        );
        self.schedule_pump(node, now);
    }

    pub(super) fn schedule_pump(&mut self, node: u32, at: Duration) {
        let n = &mut self.nodes[node as usize];
        if n.online && n.pump_at.is_none_or(|t| t > at) {
            n.pump_at = Some(at);
            self.queue.push(at, super::world::Ev::Pump { node, at });
        }
    }

    /// Requests pieces for the node's fetches, one per fetch in turn, while it has free slots; gives up a
    /// fetch that found no source for `stall_timeout`.
    pub(super) fn pump(&mut self, node: u32) {
        if !self.nodes[node as usize].online {
            return;
        }
        let now = self.now();
        let mut active: Vec<u32> = self.nodes[node as usize]
            .downloads
            .keys()
            .copied()
            .collect();
        let mut blocked = false;
        while !active.is_empty() && self.nodes[node as usize].down_busy < DOWNLOAD_SLOTS {
            active.retain(|&publication| {
                if self.nodes[node as usize].down_busy >= DOWNLOAD_SLOTS {
                    return true;
                }
                let full = self.publications[publication as usize].full_mask();
                let n = &self.nodes[node as usize];
                let Some(download) = n.downloads.get(&publication) else {
                    return false;
                };
                let have = n.pieces.get(&publication).copied().unwrap_or(0);
                let need = full & !have & !download.inflight;
                if need == 0 || download.inflight.count_ones() >= REQUESTS_PER_FETCH {
                    return false;
                }
                match self.pick_source(node, publication, need) {
                    Some((src, piece)) => {
                        self.start_transfer(src, node, publication, piece);
                        if let Some(d) = self.nodes[node as usize].downloads.get_mut(&publication) {
                            d.no_source_since = None;
                        }
                        true
                    }
                    None => {
                        blocked = true;
                        if let Some(d) = self.nodes[node as usize].downloads.get_mut(&publication) {
                            d.no_source_since.get_or_insert(now);
                        }
                        false
                    }
                }
            });
        }
        let stalled: Vec<u32> = self.nodes[node as usize]
            .downloads
            .iter()
            .filter(|(_, d)| {
                d.inflight == 0
                    && d.no_source_since
                        .is_some_and(|t| now.saturating_sub(t) >= self.config.stall_timeout)
            })
            .map(|(p, _)| *p)
            .collect();
        for publication in stalled {
            self.finish_download(node, publication, false);
        }
        if blocked {
            self.schedule_pump(node, now + RETRY_SOURCES);
        }
    }

    /// An online holder with a free upload slot and a wanted piece, and the rarest such piece.
    fn pick_source(&mut self, node: u32, publication: u32, need: u64) -> Option<(u32, u32)> {
        let p = &self.publications[publication as usize];
        let count = p.holders.len();
        if count == 0 {
            return None;
        }
        let start = rand::Rng::random_range(&mut self.rng, 0..count);
        let tie = rand::Rng::random_range(&mut self.rng, 0..64u32);
        for k in 0..count {
            let src = p.holders[(start + k) % count];
            let s = &self.nodes[src as usize];
            if src == node || !s.online || s.up_busy >= UPLOAD_SLOTS {
                continue;
            }
            let wanted = s.pieces.get(&publication).copied().unwrap_or(0) & need;
            if wanted == 0 {
                continue;
            }
            let piece = (0..64u32)
                .map(|i| (i + tie) % 64)
                .filter(|i| wanted & (1 << i) != 0)
                .min_by_key(|i| p.avail[*i as usize])?;
            return Some((src, piece));
        }
        None
    }

    fn start_transfer(&mut self, src: u32, dst: u32, publication: u32, piece: u32) {
        self.next_transfer += 1;
        let id = self.next_transfer;
        let now = self.now();
        let unix = self.unix();
        let p = &self.publications[publication as usize];
        let (bytes, ih) = (p.piece_bytes, p.infohash);
        let s = &mut self.nodes[src as usize];
        s.up_busy += 1;
        s.transfers.insert(id);
        // A peer reading the data counts as a request: it keeps the data from eviction.
        s.policy.requested(&ih, unix);
        let up = s.up_rate / UPLOAD_SLOTS as f64;
        let d = &mut self.nodes[dst as usize];
        d.down_busy += 1;
        d.transfers.insert(id);
        if let Some(download) = d.downloads.get_mut(&publication) {
            download.inflight |= 1 << piece;
        }
        let rate = up.min(d.down_rate / DOWNLOAD_SLOTS as f64);
        let round_trip = self.latency() + self.latency();
        let at = now + Duration::from_secs_f64(bytes as f64 / rate) + round_trip;
        self.transfers.insert(
            id,
            Transfer {
                src,
                dst,
                publication,
                piece,
            },
        );
        self.stats.bytes += bytes;
        if self.nodes[dst as usize].mirror {
            self.stats.mirror_bytes += bytes;
        }
        self.queue
            .push(at, super::world::Ev::PieceDone { transfer: id });
    }

    /// Takes a transfer off the books and frees its slots; returns it.
    fn release(&mut self, id: u64) -> Option<Transfer> {
        let t = self.transfers.remove(&id)?;
        let s = &mut self.nodes[t.src as usize];
        s.up_busy = s.up_busy.saturating_sub(1);
        s.transfers.remove(&id);
        let d = &mut self.nodes[t.dst as usize];
        d.down_busy = d.down_busy.saturating_sub(1);
        d.transfers.remove(&id);
        if let Some(download) = d.downloads.get_mut(&t.publication) {
            download.inflight &= !(1 << t.piece);
        }
        Some(t)
    }

    /// A transfer cut off by a node leaving; the downloader looks for another source.
    fn abort(&mut self, id: u64) {
        if let Some(t) = self.release(id) {
            let now = self.now();
            self.schedule_pump(t.dst, now);
        }
    }

    pub(super) fn piece_done(&mut self, id: u64) {
        let Some(t) = self.release(id) else {
            return;
        };
        if self.nodes[t.dst as usize]
            .downloads
            .contains_key(&t.publication)
        {
            self.add_pieces(t.dst, t.publication, 1 << t.piece);
            let full = self.publications[t.publication as usize].full_mask();
            if self.nodes[t.dst as usize].pieces.get(&t.publication) == Some(&full) {
                self.finish_download(t.dst, t.publication, true);
            }
        }
        self.pump(t.dst);
    }

    /// Ends a fetch: on success the data is kept and the publisher told (if it asked); on failure the partial
    /// data is deleted. The node's policy hears of it and acts.
    fn finish_download(&mut self, node: u32, publication: u32, ok: bool) {
        let Some(download) = self.nodes[node as usize].downloads.remove(&publication) else {
            return;
        };
        let now = self.now();
        let unix = self.unix();
        let p = &mut self.publications[publication as usize];
        let ih = p.infohash;
        if ok {
            if node != p.publisher && p.first_replica_at.is_none() {
                p.first_replica_at = Some(now);
            }
            if !self.nodes[node as usize].mirror && !download.for_push {
                self.stats.watches_done += 1;
            }
        } else {
            self.stats.failed_fetches += 1;
            if self.nodes[node as usize].mirror {
                let pieces = self.nodes[node as usize]
                    .pieces
                    .get(&publication)
                    .map_or(0, |m| u64::from(m.count_ones()));
                self.stats.wasted_bytes +=
                    pieces * self.publications[publication as usize].piece_bytes;
            }
            self.remove_pieces(node, publication);
        }
        self.nodes[node as usize]
            .policy
            .fetch_finished(&ih, ok, unix);
        if download.for_push {
            let reply = if ok { Reply::Complete } else { Reply::Refused };
            self.reply(publication, node, reply);
        }
        self.apply_policy(node);
    }
}
