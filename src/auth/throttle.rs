//! Login throttling: after `max_failures` failures within the window a key (a username or a
//! source address) is locked; the lock starts at `base_lock` and doubles with each further
//! failure, up to 15 minutes. Sans-IO: the time (seconds) comes in as an argument. Memory is
//! bounded: stale entries are pruned and the table never exceeds `MAX_KEYS`.

use std::collections::HashMap;

const WINDOW_SECS: i64 = 15 * 60;
const MAX_LOCK_SECS: i64 = 15 * 60;
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Default)]
struct Entry {
    failures: u32,
    first_failure: i64,
    locked_until: i64,
}

/// Failure counts per key.
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    base_lock: i64,
    entries: HashMap<String, Entry>,
}

impl Throttle {
    pub fn new(max_failures: u32, base_lock_secs: u64) -> Self {
        Throttle {
            max_failures: max_failures.max(1),
            base_lock: base_lock_secs.max(1) as i64,
            entries: HashMap::new(),
        }
    }

    /// Seconds until `key` may try again, or `None` when it may try now.
    pub fn check(&self, key: &str, now: i64) -> Option<u64> {
        let e = self.entries.get(key)?;
        (e.locked_until > now).then(|| (e.locked_until - now) as u64)
    }

    /// Records a failure; returns the lock (seconds) it caused, if any.
    pub fn fail(&mut self, key: &str, now: i64) -> Option<u64> {
        if self.entries.len() >= MAX_KEYS {
            self.prune(now);
            if self.entries.len() >= MAX_KEYS {
                // Under a flood of distinct keys forget the oldest half rather than grow.
                let mut firsts: Vec<i64> = self.entries.values().map(|e| e.first_failure).collect();
                firsts.sort_unstable();
                let cut = firsts[firsts.len() / 2];
                self.entries.retain(|_, e| e.first_failure > cut);
            }
        }
        let e = self.entries.entry(key.to_string()).or_default();
        if now - e.first_failure > WINDOW_SECS && e.locked_until <= now {
            *e = Entry::default();
        }
        if e.failures == 0 {
            e.first_failure = now;
        }
        e.failures += 1;
        if e.failures >= self.max_failures {
            let extra = (e.failures - self.max_failures).min(16);
            let lock = (self.base_lock << extra).min(MAX_LOCK_SECS);
            e.locked_until = now + lock;
            return Some(lock as u64);
        }
        None
    }

    /// Forgets a key after a successful login.
    pub fn succeed(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops entries whose window and lock are both over.
    pub fn prune(&mut self, now: i64) {
        self.entries
            .retain(|_, e| now - e.first_failure <= WINDOW_SECS || e.locked_until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_and_doubles() {
        let mut t = Throttle::new(3, 10);
        assert_eq!(t.fail("u", 100), None);
        assert_eq!(t.fail("u", 101), None);
        assert_eq!(t.check("u", 101), None);
        assert_eq!(t.fail("u", 102), Some(10));
        assert_eq!(t.check("u", 105), Some(7));
        assert_eq!(t.check("u", 112), None);
        assert_eq!(t.fail("u", 113), Some(20));
        assert_eq!(t.fail("u", 113), Some(40));
        assert_eq!(t.check("other", 113), None);
        t.succeed("u");
        assert_eq!(t.check("u", 114), None);
    }

    #[test]
    fn lock_is_capped_and_window_expires() {
        let mut t = Throttle::new(1, 600);
        t.fail("u", 0);
        assert_eq!(t.fail("u", 0), Some(900));
        // After the window and the lock, the count starts over.
        assert_eq!(t.fail("x", 0), Some(600));
        assert_eq!(t.fail("x", 2000), Some(600));
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::new(5, 1);
        for i in 0..(MAX_KEYS + 10) {
            t.fail(&format!("k{i}"), i as i64 / 1000);
        }
        assert!(t.entries.len() <= MAX_KEYS);
    }
}
