//! A bounded set that forgets its oldest entries first.

use std::collections::{BTreeSet, VecDeque};

/// Remembers at most `capacity` values; inserting into a full set forgets the oldest one.
#[derive(Clone, Debug)]
pub(crate) struct RecentSet<T: Ord + Clone> {
    capacity: usize,
    order: VecDeque<T>,
    members: BTreeSet<T>,
}

impl<T: Ord + Clone> RecentSet<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentSet {
            capacity,
            order: VecDeque::new(),
            members: BTreeSet::new(),
        }
    }

    /// Adds `value`; returns whether it was not already present.
    pub(crate) fn insert(&mut self, value: T) -> bool {
        if self.capacity == 0 || self.members.contains(&value) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.members.remove(&oldest);
        }
        self.members.insert(value.clone());
        self.order.push_back(value);
        true
    }

    pub(crate) fn contains(&self, value: &T) -> bool {
        self.members.contains(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_first() {
        let mut set = RecentSet::new(3);
        assert!(set.insert(1));
        assert!(!set.insert(1));
        assert!(set.insert(2));
        assert!(set.insert(3));
        assert!(set.insert(4));
        assert_eq!(set.len(), 3);
        assert!(!set.contains(&1));
        assert!(set.contains(&2) && set.contains(&4));
        // A value seen again is not refreshed: the order is by first insertion.
        assert!(!set.insert(2));
        assert!(set.insert(5));
        assert!(!set.contains(&2));
    }
}
