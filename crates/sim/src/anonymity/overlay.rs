//! The overlay of the anonymity scenario: connections, churn and link latency (see `world.rs` for the model).

use std::time::Duration;

use kolokol_core::stem::{Stem, StemEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::world::{Ev, Trial};

impl Trial {
    pub(super) fn conn_of(&self, node: u32, peer: u32) -> Option<u64> {
        let n = &self.nodes[node as usize];
        if !n.online {
            return None;
        }
        n.conns.get(&peer).map(|(id, _)| *id)
    }

    pub(super) fn go_online(&mut self, node: u32) {
        let seed = self.rng.random();
        let config = self.config.stem.clone();
        let n = &mut self.nodes[node as usize];
        n.online = true;
        n.life += 1;
        n.timer_at = None;
        // In-memory state starts afresh.
        if let Ok(stem) = Stem::new(config, StdRng::seed_from_u64(seed)) {
            n.stem = stem;
        }
        let now = self.queue.now();
        self.queue.push(now, Ev::Maintain { node });
        if let Some(id) = self.own[node as usize]
            && self.items[id as usize].fluffed.is_none()
        {
            // The node keeps its own publication until it is seen in fluff, and starts its stem again after a
            // restart (a relay's stem state is in memory only).
            let bytes = self.items[id as usize].bytes;
            self.handle(node, StemEvent::Originate { id, bytes });
        }
    }

    pub(super) fn go_offline(&mut self, node: u32) {
        let peers: Vec<u32> = self.nodes[node as usize].conns.keys().copied().collect();
        for peer in peers {
            self.nodes[node as usize].conns.remove(&peer);
            self.nodes[peer as usize].conns.remove(&node);
            self.handle(peer, StemEvent::PeerDown { peer: node });
            let now = self.queue.now();
            self.queue
                .push(now + Duration::from_secs(1), Ev::Maintain { node: peer });
        }
        let n = &mut self.nodes[node as usize];
        n.online = false;
        n.dialing.clear();
        n.timer_at = None;
    }

    /// Dials random nodes until the node has its outbound connections.
    pub(super) fn maintain(&mut self, node: u32) {
        let want = self.config.outbound;
        let mut attempts = 0;
        loop {
            let n = &self.nodes[node as usize];
            let outbound = n.conns.values().filter(|(_, out)| *out).count() + n.dialing.len();
            if outbound >= want || attempts >= want * 4 {
                break;
            }
            attempts += 1;
            let target = self.rng.random_range(0..self.nodes.len() as u32);
            let t = &self.nodes[target as usize];
            let inbound = t.conns.values().filter(|(_, out)| !*out).count();
            if target == node
                || !t.online
                || inbound >= self.config.max_inbound
                || n.conns.contains_key(&target)
                || n.dialing.contains(&target)
            {
                continue;
            }
            self.nodes[node as usize].dialing.insert(target);
            let at = self.queue.now() + self.latency(node, target) * 4;
            self.queue.push(
                at,
                Ev::Connected {
                    dialer: node,
                    target,
                },
            );
        }
    }

    pub(super) fn connected(&mut self, dialer: u32, target: u32) {
        self.nodes[dialer as usize].dialing.remove(&target);
        let (d, t) = (&self.nodes[dialer as usize], &self.nodes[target as usize]);
        if !d.online || !t.online || d.conns.contains_key(&target) || t.conns.contains_key(&dialer)
        {
            return;
        }
        self.next_conn += 1;
        let id = self.next_conn;
        self.nodes[dialer as usize].conns.insert(target, (id, true));
        self.nodes[target as usize]
            .conns
            .insert(dialer, (id, false));
        // Only outbound peers are relay candidates.
        self.handle(dialer, StemEvent::PeerUp { peer: target });
    }

    /// The one-way latency of the pair, fixed for the run.
    pub(crate) fn latency(&self, a: u32, b: u32) -> Duration {
        let (lo, hi) = (a.min(b) as u64, a.max(b) as u64);
        let unit =
            (splitmix(self.config.seed ^ (lo << 32 | hi)) >> 11) as f64 / (1u64 << 53) as f64;
        let span = self
            .config
            .latency_max
            .saturating_sub(self.config.latency_min);
        self.config.latency_min + span.mul_f64(unit)
    }

    pub(super) fn churn_wait(&mut self, online: bool) -> Duration {
        if self.config.churn <= 0.0 {
            return Duration::from_secs(365 * 86_400);
        }
        let offline = self.config.mean_offline;
        let mean = if online {
            offline.mul_f64((1.0 - self.config.churn) / self.config.churn)
        } else {
            offline
        };
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        mean.mul_f64(-u.ln())
    }
}

/// SplitMix64 (per-pair latencies without storing them).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
