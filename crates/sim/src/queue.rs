//! The virtual clock: a queue of events ordered by time, ties broken by insertion order, so a run is a pure
//! function of its inputs.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

struct Entry<E> {
    at: Duration,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    /// Reversed, so that the max-heap pops the earliest entry first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Events waiting for their time.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
    now: Duration,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
            now: Duration::ZERO,
        }
    }
}

impl<E> EventQueue<E> {
    /// The current virtual time: that of the last event popped.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Queues `event` at `at` (an event in the past runs at the current time).
    pub fn push(&mut self, at: Duration, event: E) {
        self.seq += 1;
        self.heap.push(Entry {
            at: at.max(self.now),
            seq: self.seq,
            event,
        });
    }

    /// The next event if it is due no later than `until`; advances the clock to it.
    pub fn pop_until(&mut self, until: Duration) -> Option<E> {
        if self.heap.peek().is_some_and(|e| e.at <= until) {
            let entry = self.heap.pop()?;
            self.now = entry.at;
            Some(entry.event)
        } else {
            self.now = self.now.max(until);
            None
        }
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = EventQueue::default();
        let ms = Duration::from_millis;
        q.push(ms(5), "b");
        q.push(ms(1), "a");
        q.push(ms(5), "c");
        q.push(ms(9), "d");
        assert_eq!(q.pop_until(ms(6)), Some("a"));
        assert_eq!(q.now(), ms(1));
        assert_eq!(q.pop_until(ms(6)), Some("b"));
        assert_eq!(q.pop_until(ms(6)), Some("c"));
        assert_eq!(q.pop_until(ms(6)), None);
        assert_eq!(q.now(), ms(6));
        // Scheduling in the past runs at the current time.
        q.push(ms(2), "e");
        assert_eq!(q.pop_until(ms(100)), Some("e"));
        assert_eq!(q.now(), ms(6));
    }
}
