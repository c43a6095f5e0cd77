//! Anonymity scenario: how well can spies tell which node published? (Issue 12, part 2.)
//!
//! A share of the nodes are spies of one adversary: they run the protocol like everyone else and log every
//! stem message and every fluff announcement they receive (who sent what, when). After a warm-up, every online
//! honest node publishes one publication at a random moment of a one-minute window (the paper's model), under
//! one of two designs:
//!
//! - [`Design::Push`], today's: the publisher is the first to send the record to its peers (publisher push, then
//!   relaying by the record policy);
//! - [`Design::Stem`], the new one: every node runs core's [`kolokol_core::stem::Stem`], the publication travels
//!   a stem (each hop fetching it from the previous one) and the node where it ends fluffs it the way the
//!   publisher pushes it today.
//!
//! The adversary's estimators (`estimate.rs`: first spy, and the paper's maximum-weight matching) guess a
//! publisher for each publication; [`CellReport`] holds their precision and recall averaged over trials, with
//! what the stem cost (time to fluff, how stems ended). The network is churning (`world.rs` has the model).

mod estimate;
mod overlay;
mod world;

use std::fmt;
use std::time::Duration;

use kolokol_core::stem::StemConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use estimate::Score;

use crate::metrics::quantile;

/// Which way a new publication leaves its publisher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Design {
    /// Today: the publisher pushes it to its peers first.
    Push,
    /// Dandelion++ stem, then fluff.
    Stem,
}

impl fmt::Display for Design {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Design::Push => "today (publisher push)",
            Design::Stem => "stem (Dandelion++)",
        })
    }
}

/// Parameters of the scenario.
#[derive(Clone, Debug)]
pub struct AnonConfig {
    /// Seed of the first trial (trial `t` uses `seed + t`; both designs see the same networks).
    pub seed: u64,
    /// Nodes: 2,000.
    pub nodes: usize,
    /// Outbound connections a node keeps (the overlay degree is about twice this): 4.
    pub outbound: usize,
    /// Most inbound connections a node accepts: 32.
    pub max_inbound: usize,
    /// Share of nodes offline at any moment: 0.2.
    pub churn: f64,
    /// Mean offline period (exponential; the online period follows from `churn`): 2 min.
    pub mean_offline: Duration,
    /// One-way link latency, fixed per pair, uniform in this range: 50-200 ms.
    pub latency_min: Duration,
    /// See `latency_min`.
    pub latency_max: Duration,
    /// A node's upload rate when the next hop fetches a publication from it, bytes/s: 2 MB/s.
    pub upload: u64,
    /// Smallest publication (sizes are log-uniform): 1 MB.
    pub size_min: u64,
    /// Largest publication: 150 MB.
    pub size_max: u64,
    /// Time the network runs before anyone publishes: 2 min.
    pub warmup: Duration,
    /// Window in which every online honest node publishes once: 1 min.
    pub publish_window: Duration,
    /// How long after the window a trial runs at most: 1 h.
    pub horizon: Duration,
    /// The stem machine's parameters (the node's defaults).
    pub stem: StemConfig,
    /// Whether spies swallow the stems they receive (log them and pass nothing on), so that the fail-safes of
    /// the nodes before them must end those stems: off (spies follow the protocol).
    pub spies_swallow_stems: bool,
}

impl Default for AnonConfig {
    fn default() -> Self {
        AnonConfig {
            seed: 1,
            nodes: 2000,
            outbound: 4,
            max_inbound: 32,
            churn: 0.2,
            mean_offline: Duration::from_secs(120),
            latency_min: Duration::from_millis(50),
            latency_max: Duration::from_millis(200),
            upload: 2_000_000,
            size_min: 1_000_000,
            size_max: 150_000_000,
            warmup: Duration::from_secs(120),
            publish_window: Duration::from_secs(60),
            horizon: Duration::from_secs(3600),
            stem: StemConfig::default(),
            spies_swallow_stems: false,
        }
    }
}

/// Figures of one design at one spy share, over all trials.
#[derive(Clone, Debug)]
pub struct CellReport {
    /// The design.
    pub design: Design,
    /// Share of nodes that are spies.
    pub spy_share: f64,
    /// Trials run.
    pub trials: usize,
    /// Publications in all trials.
    pub publications: usize,
    /// First-spy estimator, mean over trials.
    pub first_spy: Score,
    /// The lowest and highest first-spy precision of a single trial (how stable the mean is).
    pub first_spy_range: (f64, f64),
    /// Maximum-weight estimator, mean over trials.
    pub max_weight: Score,
    /// Time from publishing to the first fluff: median and 90th percentile, seconds.
    pub to_fluff: (f64, f64),
    /// Relay hops before the first fluff (stem design), mean.
    pub mean_hops: f64,
    /// Shares of publications whose first fluff came from a fail-safe, from their own publisher (by its
    /// fail-safe), and that were never fluffed within the horizon.
    pub by_failsafe: f64,
    /// See `by_failsafe`.
    pub by_publisher: f64,
    /// See `by_failsafe`.
    pub never: f64,
    /// Share of publications a spy first saw in stem (the rest it first heard of in fluff, or never).
    pub seen_in_stem: f64,
}

/// Runs `trials` trials of one design at one spy share.
pub fn run_cell(
    config: &AnonConfig,
    design: Design,
    spy_share: f64,
    trials: usize,
) -> anyhow::Result<CellReport> {
    anyhow::ensure!(config.nodes >= 10, "need at least ten nodes");
    anyhow::ensure!(
        (0.0..1.0).contains(&config.churn),
        "churn must be in [0, 1)"
    );
    anyhow::ensure!(
        (0.0..1.0).contains(&spy_share),
        "spy share must be in [0, 1)"
    );
    anyhow::ensure!(trials > 0, "need at least one trial");
    anyhow::ensure!(
        config.size_min > 0 && config.size_min <= config.size_max,
        "bad size range"
    );
    anyhow::ensure!(config.upload > 0, "upload rate must be positive");
    let spies = (config.nodes as f64 * spy_share).round() as usize;
    let mut report = CellReport {
        design,
        spy_share,
        trials,
        publications: 0,
        first_spy: Score::default(),
        first_spy_range: (f64::INFINITY, 0.0),
        max_weight: Score::default(),
        to_fluff: (0.0, 0.0),
        mean_hops: 0.0,
        by_failsafe: 0.0,
        by_publisher: 0.0,
        never: 0.0,
        seen_in_stem: 0.0,
    };
    let mut delays = Vec::new();
    let (mut hops, mut failsafe, mut publisher, mut never) = (0u64, 0usize, 0usize, 0usize);
    let mut seen_in_stem = 0usize;
    for t in 0..trials {
        let seed = config.seed.wrapping_add(t as u64);
        let mut trial = world::Trial::new(config, design, spies, seed)?;
        trial.run();
        let items = &trial.items;
        let fs = estimate::first_spy(items);
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let mw = estimate::max_weight(items, &mut rng);
        report.first_spy.precision += fs.precision / trials as f64;
        report.first_spy_range.0 = report.first_spy_range.0.min(fs.precision);
        report.first_spy_range.1 = report.first_spy_range.1.max(fs.precision);
        report.first_spy.recall += fs.recall / trials as f64;
        report.max_weight.precision += mw.precision / trials as f64;
        report.max_weight.recall += mw.recall / trials as f64;
        report.publications += items.len();
        for item in items {
            debug_assert!(!trial.is_spy(item.publisher));
            seen_in_stem += usize::from(item.first.is_some_and(|o| o.in_stem));
            match item.fluffed {
                Some((node, at)) => {
                    delays.push(at.saturating_sub(item.published_at));
                    hops += u64::from(item.hops);
                    failsafe += usize::from(item.by_failsafe);
                    publisher += usize::from(node == item.publisher && design == Design::Stem);
                }
                None => never += 1,
            }
        }
    }
    let total = report.publications.max(1) as f64;
    delays.sort();
    report.to_fluff = (
        quantile(&delays, 0.5).unwrap_or_default().as_secs_f64(),
        quantile(&delays, 0.9).unwrap_or_default().as_secs_f64(),
    );
    report.mean_hops = hops as f64 / (delays.len().max(1)) as f64;
    report.by_failsafe = failsafe as f64 / total;
    report.by_publisher = publisher as f64 / total;
    report.never = never as f64 / total;
    report.seen_in_stem = seen_in_stem as f64 / total;
    Ok(report)
}

/// The bounds the Dandelion++ paper states for a spy share `p`: no routing scheme gets the expected precision
/// below `p²` (Venkatakrishnan, Fanti, Viswanath 2017), and Dandelion++ on a 4-regular anonymity graph with
/// one-to-one routing keeps it `O(p² log(1/p))` (Fanti et al. 2018). Returns `p²` and `p² ln(1/p)` (the
/// second without the constant the O hides).
pub fn paper_bounds(p: f64) -> (f64, f64) {
    (p * p, p * p * (1.0 / p).ln())
}

/// Prints cells as a Markdown table.
pub fn table(cells: &[CellReport]) -> String {
    let mut out = String::from(
        "| spies | design | first spy: precision (trials' range) | recall | max weight: precision (= recall) | \
         p² | p² ln(1/p) | first seen in stem | to fluff, median (p90) | relay hops | fluffed by fail-safe | \
         by own publisher | never |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in cells {
        let (low, d_pp) = paper_bounds(c.spy_share);
        out += &format!(
            "| {:.0}% | {} | {:.3} ({:.3}-{:.3}) | {:.3} | {:.3} | {:.4} | {:.4} | {:.1}% | {:.1} s ({:.1} s) | {:.2} | {:.1}% | {:.2}% | {:.2}% |\n",
            c.spy_share * 100.0,
            c.design,
            c.first_spy.precision,
            c.first_spy_range.0,
            c.first_spy_range.1,
            c.first_spy.recall,
            c.max_weight.precision,
            low,
            d_pp,
            c.seen_in_stem * 100.0,
            c.to_fluff.0,
            c.to_fluff.1,
            c.mean_hops,
            c.by_failsafe * 100.0,
            c.by_publisher * 100.0,
            c.never * 100.0,
        );
    }
    out
}
