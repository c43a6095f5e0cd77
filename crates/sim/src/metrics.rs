//! What a run measures: how fast records reach nodes, how fast a node catches up, what crossed the links.

use std::time::Duration;

use crate::node::TrafficCounters;
use crate::records::{RecordKind, Records};

/// A record whose spread is measured.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The record.
    pub record: u32,
    /// When it was published.
    pub published_at: Duration,
    /// Nodes that count: online at publication and not gone offline since (a node that leaves is dropped).
    pub cohort: Vec<bool>,
    /// When each node first held it.
    pub reached: Vec<Option<Duration>>,
}

impl Probe {
    /// Times from publication until `fraction` of the cohort held the record (`None`: not reached).
    pub fn time_to(&self, fraction: f64) -> Option<Duration> {
        let mut times: Vec<Option<Duration>> = self
            .cohort
            .iter()
            .zip(&self.reached)
            .filter(|(member, _)| **member)
            .map(|(_, at)| at.map(|t| t.saturating_sub(self.published_at)))
            .collect();
        if times.is_empty() {
            return None;
        }
        // `None` sorts first; put unreached nodes last instead.
        times.sort_by_key(|t| t.unwrap_or(Duration::MAX));
        let needed = ((fraction * times.len() as f64).ceil() as usize).clamp(1, times.len());
        times[needed - 1]
    }

    /// Members of the cohort.
    pub fn cohort_size(&self) -> usize {
        self.cohort.iter().filter(|m| **m).count()
    }
}

/// A node catching up after coming back online.
#[derive(Clone, Copy, Debug)]
pub struct Catchup {
    /// When it came back.
    pub since: Duration,
    /// Records that existed then (indices below this), not spam.
    pub existing: u32,
    /// How many of those it still lacks.
    pub lacking: u32,
    /// How many it lacked when it came back.
    pub lacked_at_start: u32,
}

/// The partition measurement.
#[derive(Clone, Debug, Default)]
pub struct PartitionTrack {
    /// When the halves were joined again.
    pub heal_at: Option<Duration>,
    /// Records published in the halves.
    pub total: u32,
    /// Partition records each node holds.
    pub held: Vec<u32>,
    /// When each node first held all of them.
    pub complete_at: Vec<Option<Duration>>,
    /// The nodes timed: online at the heal, and not gone offline before holding everything.
    pub cohort: Vec<bool>,
}

impl PartitionTrack {
    /// Time from the heal until `fraction` of the cohort held every partition record.
    pub fn time_to(&self, fraction: f64) -> Option<Duration> {
        let heal = self.heal_at?;
        let mut times: Vec<Duration> = Vec::new();
        let mut members = 0usize;
        for (stayed, complete) in self.cohort.iter().zip(&self.complete_at) {
            if !*stayed {
                continue;
            }
            members += 1;
            if let Some(at) = complete {
                times.push(at.saturating_sub(heal));
            }
        }
        if members == 0 {
            return None;
        }
        times.sort();
        let needed = ((fraction * members as f64).ceil() as usize).clamp(1, members);
        times.get(needed - 1).copied()
    }
}

/// Everything measured during a run.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Probes, in publication order.
    pub probes: Vec<Probe>,
    /// The partition, when the scenario has one.
    pub partition: Option<PartitionTrack>,
    /// Per node, the catch-up in progress.
    pub catchup: Vec<Option<Catchup>>,
    /// Completed catch-ups: records lacked and time taken.
    pub catchups_done: Vec<(u32, Duration)>,
    /// Catch-ups cut short by going offline again.
    pub catchups_abandoned: u32,
    /// Bytes sent, by kind, over all nodes.
    pub traffic: TrafficCounters,
    /// Whole records received that the node already held.
    pub duplicate_records: u64,
    /// Reconciliation sessions started, completed, failed (an error, not a closed connection).
    pub sessions_started: u64,
    /// See `sessions_started`.
    pub sessions_completed: u64,
    /// See `sessions_started`.
    pub session_errors: u64,
    /// Initiator messages per completed session.
    pub session_rounds: Vec<u32>,
    /// Records found missing by reconciliation (need plus have), over all completed sessions.
    pub reconciled_ids: u64,
    /// Messages delivered.
    pub messages: u64,
}

impl Metrics {
    /// Notes that `node` now holds `record`.
    pub fn on_hold(&mut self, node: usize, record: u32, now: Duration, records: &Records) {
        for probe in self.probes.iter_mut().rev() {
            if probe.record == record {
                if probe.reached[node].is_none() {
                    probe.reached[node] = Some(now);
                }
                break;
            }
        }
        if let (Some(track), RecordKind::Partition(_)) =
            (&mut self.partition, records.get(record).kind)
        {
            track.held[node] += 1;
            if track.held[node] == track.total && track.complete_at[node].is_none() {
                track.complete_at[node] = Some(now);
            }
        }
        if let Some(catchup) = &mut self.catchup[node]
            && record < catchup.existing
            && records.get(record).kind != RecordKind::Spam
        {
            catchup.lacking = catchup.lacking.saturating_sub(1);
            if catchup.lacking == 0 {
                self.catchups_done
                    .push((catchup.lacked_at_start, now.saturating_sub(catchup.since)));
                self.catchup[node] = None;
            }
        }
    }

    /// Notes that `node` went offline.
    pub fn on_offline(&mut self, node: usize) {
        for probe in &mut self.probes {
            if probe.reached[node].is_none() {
                probe.cohort[node] = false;
            }
        }
        if let Some(track) = &mut self.partition
            && track.heal_at.is_some()
            && track.complete_at[node].is_none()
        {
            track.cohort[node] = false;
        }
        if self.catchup[node].take().is_some() {
            self.catchups_abandoned += 1;
        }
    }
}

/// A duration as seconds with one decimal, or "never".
pub fn secs(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
        None => "not reached".to_owned(),
    }
}

/// The value at quantile `q` of sorted `values`.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[index])
}
