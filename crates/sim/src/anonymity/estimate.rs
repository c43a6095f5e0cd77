//! The adversary's estimators of who published, as in the Dandelion++ paper, and how they are scored.
//!
//! - **First spy**: each publication is attributed to the honest node it first reached a spy from (in stem
//!   or in fluff). Scored as the paper scores it: for each publisher v, the publications attributed to v
//!   form v's "ward"; precision is the mean over publishers of 1/|ward| when v's own publication is in it (0
//!   otherwise); recall is the share attributed correctly.
//! - **Maximum weight**: the paper's maximum-weight matching of publications to nodes, with the paper's
//!   likelihoods, and the adversary knowing every honest node's relays of the moment (the anonymity graph;
//!   the paper's worst case). A publication seen in stem from `e` may be `e`'s own (weight `h/(1-q)` with
//!   `h = (1-q)/relays`) or come from a node `k` relay hops before `e` (`h^(k+1)/(1-q)`), up to two hops
//!   back; one first seen in fluff from `w` ended its stem near `w` (the sender stands for the fluffing node,
//!   as the paper estimates it by first spy on the diffusion) and comes from a node one to three hops before
//!   it (the same weights times `q/(1-q)`). Today's design has no stem: the first sender has weight 1 and its
//!   honest peers a small one. The matching gives each node at most one publication (the paper's model: every
//!   honest node published one), solved greedily by weight (ties at random) instead of exactly, which can
//!   only understate the estimator a little; precision and recall are then equal.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;

use super::Design;
use super::world::{Item, Observation, Trial};

/// The candidate publishers an observation points at, with their weights.
pub(crate) fn candidates(trial: &Trial, obs: Observation) -> Vec<(u32, f64)> {
    match trial.design() {
        Design::Push => {
            let peers = trial.honest_peers(obs.sender);
            let small = 0.5 / (peers.len() as f64 + 1.0);
            std::iter::once((obs.sender, 1.0))
                .chain(peers.into_iter().map(|p| (p, small)))
                .collect()
        }
        Design::Stem => {
            let stem = &trial.config().stem;
            let q = f64::from(stem.diffuse_per_mille) / 1000.0;
            let hop = (1.0 - q) / stem.relays as f64;
            let (mut level, depth, factor, mut weight) = if obs.in_stem {
                (vec![obs.sender], 2, 1.0, hop / (1.0 - q))
            } else {
                (
                    trial.relaying_to(obs.sender),
                    3,
                    q / (1.0 - q),
                    hop * hop / (1.0 - q),
                )
            };
            let mut out: BTreeMap<u32, f64> = BTreeMap::new();
            for k in 0..=depth {
                for &node in &level {
                    let w = out.entry(node).or_insert(0.0);
                    *w = w.max(weight * factor);
                }
                if k == depth {
                    break;
                }
                level = level
                    .iter()
                    .flat_map(|&n| trial.relaying_to(n))
                    .filter(|n| !out.contains_key(n))
                    .collect();
                level.sort_unstable();
                level.dedup();
                weight *= hop;
            }
            out.into_iter().collect()
        }
    }
}

/// Precision and recall of one estimator over one trial.
#[derive(Clone, Copy, Debug, Default)]
pub struct Score {
    /// The paper's precision (mean over publishers).
    pub precision: f64,
    /// Share of publications attributed to their publisher.
    pub recall: f64,
}

/// The first-spy estimator.
pub(crate) fn first_spy(items: &[Item]) -> Score {
    let n = items.len().max(1) as f64;
    let mut ward: BTreeMap<u32, usize> = BTreeMap::new();
    for item in items {
        if let Some(obs) = item.first {
            *ward.entry(obs.sender).or_default() += 1;
        }
    }
    let mut score = Score::default();
    for item in items {
        if item.first.is_some_and(|o| o.sender == item.publisher) {
            score.recall += 1.0 / n;
            score.precision += 1.0 / (ward[&item.publisher] as f64) / n;
        }
    }
    score
}

/// The maximum-weight matching estimator (greedy).
pub(crate) fn max_weight(items: &[Item], rng: &mut StdRng) -> Score {
    let n = items.len().max(1) as f64;
    let mut edges: Vec<(f64, u64, usize, u32)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for &(node, weight) in &item.candidates {
            edges.push((weight, rng.random(), i, node));
        }
    }
    edges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut assigned = vec![false; items.len()];
    let mut used = std::collections::BTreeSet::new();
    let mut correct = 0usize;
    for (_, _, i, node) in edges {
        if assigned[i] || used.contains(&node) {
            continue;
        }
        assigned[i] = true;
        used.insert(node);
        if items[i].publisher == node {
            correct += 1;
        }
    }
    let share = correct as f64 / n;
    Score {
        precision: share,
        recall: share,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use rand::SeedableRng;

    use super::*;

    fn item(publisher: u32, sender: u32, candidates: Vec<(u32, f64)>) -> Item {
        Item {
            publisher,
            bytes: 1,
            published_at: Duration::ZERO,
            fluffed: None,
            by_failsafe: false,
            hops: 0,
            stem_nodes: Vec::new(),
            forwarded_by: BTreeSet::new(),
            first: Some(Observation {
                at: Duration::ZERO,
                sender,
                in_stem: true,
            }),
            candidates,
        }
    }

    #[test]
    fn first_spy_is_scored_as_the_paper_scores_it() {
        // Node 1 is credited with its own and node 2's publication (ward of two), node 3 with its own.
        let items = [
            item(1, 1, vec![]),
            item(2, 1, vec![]),
            item(3, 3, vec![]),
            item(4, 9, vec![]),
        ];
        let score = first_spy(&items);
        assert!(
            (score.precision - (0.5 + 1.0) / 4.0).abs() < 1e-12,
            "{score:?}"
        );
        assert!((score.recall - 2.0 / 4.0).abs() < 1e-12, "{score:?}");
    }

    #[test]
    fn max_weight_gives_each_node_one_publication_heaviest_first() {
        // Both point at node 1 first; the heavier claim wins it and the other falls back to node 2.
        let items = [
            item(1, 1, vec![(1, 0.6)]),
            item(2, 1, vec![(1, 0.5), (2, 0.2)]),
            item(3, 3, vec![(3, 0.5), (1, 0.1)]),
            item(4, 9, vec![(9, 0.5)]),
        ];
        let score = max_weight(&items, &mut StdRng::seed_from_u64(1));
        assert!((score.precision - 3.0 / 4.0).abs() < 1e-12, "{score:?}");
        assert_eq!(score.precision, score.recall);
    }
}
