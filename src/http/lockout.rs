//! Failed logins, by client address: a budget of failed password checks, then a lock-out
//! that doubles with each further failure, during which the address is answered 429 without
//! a password check; and the slot that lets each address have one password check pending at
//! a time, so a flood from one address queues behind itself, not in front of others.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Failed password checks an address may make before it is locked out.
pub const FAILURE_BUDGET: u32 = 5;
/// The first lock-out; each failure after it doubles it, up to [`MAX_LOCKOUT`].
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(1);
pub const MAX_LOCKOUT: Duration = Duration::from_secs(300);
/// An address with no failure for this long starts again with its whole budget.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered at most (about 100 bytes each); the longest quiet goes first.
pub const MAX_ADDRESSES: usize = 10_000;
/// Requests of one address waiting for its password check slot; more are answered 429 at
/// once, so one address cannot pile up tasks behind its own checks.
pub const MAX_WAITING: usize = 8;

/// The unit an address is judged by: an IPv4 address, or the /64 of an IPv6 one (a single
/// host is commonly given a whole /64). IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    pub fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(_) => Client(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Client(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}"),
            IpAddr::V6(a) => write!(f, "{a}/64"),
        }
    }
}

struct Entry {
    /// Failed checks since the address was last forgotten or logged in.
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
    /// One permit: the address's password check in progress. Shared with the requests
    /// waiting for it, which is how an entry in use is told apart.
    slot: Arc<Semaphore>,
}

impl Entry {
    fn new(now: Instant) -> Entry {
        Entry {
            failures: 0,
            last_failure: now,
            locked_until: None,
            slot: Arc::new(Semaphore::new(1)),
        }
    }
    fn in_use(&self) -> bool {
        Arc::strong_count(&self.slot) > 1
    }
    fn forgotten(&self, now: Instant) -> bool {
        !self.in_use()
            && self.locked_until.is_none_or(|t| t <= now)
            && (self.failures == 0
                || now.saturating_duration_since(self.last_failure) >= FORGET_AFTER)
    }
}

/// What a request may do before its password check.
pub enum Admission {
    /// Check the password once the slot is held (wait for it with [`Failures::slot`]).
    Check(Arc<Semaphore>),
    /// Locked out, or too many requests already waiting: 429, retry after this long.
    Refused(Duration),
}

/// The per-address table, bounded by `cap` entries.
pub struct Failures {
    cap: usize,
    table: Mutex<HashMap<Client, Entry>>,
}

impl Default for Failures {
    fn default() -> Self {
        Failures::new(MAX_ADDRESSES)
    }
}

impl Failures {
    pub fn new(cap: usize) -> Failures {
        Failures {
            cap: cap.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` is locked out now; Some(time left) when it is.
    pub fn locked(&self, client: Client) -> Option<Duration> {
        let now = Instant::now();
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let until = table.get(&client)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Admits a password check of `client`, or refuses it without one.
    pub fn admit(&self, client: Client) -> Admission {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if !table.contains_key(&client) && table.len() >= self.cap {
            make_room(&mut table, self.cap, now);
        }
        let entry = table.entry(client).or_insert_with(|| Entry::new(now));
        if let Some(until) = entry.locked_until.filter(|t| *t > now) {
            return Admission::Refused(until - now);
        }
        // The table's own reference, the check in progress, and those waiting.
        if Arc::strong_count(&entry.slot) >= MAX_WAITING + 2 {
            return Admission::Refused(Duration::from_secs(1));
        }
        Admission::Check(entry.slot.clone())
    }

    /// A password check of `client` failed: counts it, and locks the address out past its
    /// budget. Returns the lock-out it started, if any.
    pub fn failed(&self, client: Client) -> Option<Duration> {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if !table.contains_key(&client) && table.len() >= self.cap {
            make_room(&mut table, self.cap, now);
        }
        let entry = table.entry(client).or_insert_with(|| Entry::new(now));
        if entry.failures > 0 && now.saturating_duration_since(entry.last_failure) >= FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        let over = entry.failures.checked_sub(FAILURE_BUDGET)?;
        let lockout = FIRST_LOCKOUT
            .saturating_mul(1u32 << over.min(16))
            .min(MAX_LOCKOUT);
        entry.locked_until = Some(now + lockout);
        Some(lockout)
    }

    /// `client` logged in: its failures are forgotten (no other address's).
    pub fn succeeded(&self, client: Client) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = table.get_mut(&client) {
            e.failures = 0;
            e.locked_until = None;
        }
    }

    /// Drops the entry of `client` if it holds nothing worth keeping, once its check ended.
    pub fn release(&self, client: Client) {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.get(&client).is_some_and(|e| e.forgotten(now)) {
            table.remove(&client);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

/// Frees at least one entry of a full table: every forgotten one, else the one whose last
/// failure is oldest among those not in use (else any). An evicted address starts afresh:
/// the cap bounds memory, not what a client with many addresses can try.
fn make_room(table: &mut HashMap<Client, Entry>, cap: usize, now: Instant) {
    table.retain(|_, e| !e.forgotten(now));
    if table.len() < cap {
        return;
    }
    let oldest = table
        .iter()
        .min_by_key(|(_, e)| (e.in_use(), e.last_failure))
        .map(|(c, _)| *c);
    if let Some(c) = oldest {
        table.remove(&c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> Client {
        Client::of(IpAddr::from([10, 0, 0, last]))
    }

    fn lockout(f: &Failures, c: Client) -> Option<Duration> {
        match f.admit(c) {
            Admission::Refused(d) => Some(d),
            Admission::Check(_) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_then_a_doubling_lockout() {
        let f = Failures::new(100);
        let c = v4(1);
        for n in 1..FAILURE_BUDGET {
            assert_eq!(f.failed(c), None, "failure {n}");
            assert!(lockout(&f, c).is_none());
        }
        assert_eq!(f.failed(c), Some(FIRST_LOCKOUT));
        assert_eq!(lockout(&f, c), Some(FIRST_LOCKOUT));
        assert_eq!(f.locked(c), Some(FIRST_LOCKOUT));
        // Others are not touched.
        assert!(lockout(&f, v4(2)).is_none());
        tokio::time::advance(FIRST_LOCKOUT).await;
        assert!(lockout(&f, c).is_none(), "the lock-out ended");
        assert_eq!(f.failed(c), Some(2 * FIRST_LOCKOUT));
        for _ in 0..20 {
            f.failed(c);
        }
        assert_eq!(f.locked(c), Some(MAX_LOCKOUT), "capped");
        // A login forgets the address's failures.
        f.succeeded(c);
        assert!(lockout(&f, c).is_none());
        assert_eq!(f.failed(c), None);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_forgotten_after_a_quiet_while() {
        let f = Failures::new(100);
        let c = v4(1);
        for _ in 1..FAILURE_BUDGET {
            f.failed(c);
        }
        f.release(c);
        assert_eq!(f.len(), 1, "failures are remembered");
        tokio::time::advance(FORGET_AFTER).await;
        // The whole budget again.
        for _ in 1..FAILURE_BUDGET {
            assert_eq!(f.failed(c), None);
        }
        assert!(f.failed(c).is_some());
        tokio::time::advance(MAX_LOCKOUT + FORGET_AFTER).await;
        f.release(c);
        assert_eq!(f.len(), 0, "an expired entry goes");
    }

    #[tokio::test(start_paused = true)]
    async fn the_table_is_bounded_and_evicts_the_oldest() {
        let f = Failures::new(3);
        for i in 1..=3 {
            f.failed(v4(i));
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(f.len(), 3);
        f.failed(v4(4));
        assert_eq!(f.len(), 3);
        assert!(
            !f.table.lock().unwrap().contains_key(&v4(1)),
            "the oldest went"
        );
        assert!(f.table.lock().unwrap().contains_key(&v4(4)));
        // Expired entries go before any live one.
        tokio::time::advance(FORGET_AFTER).await;
        f.failed(v4(5));
        f.failed(v4(6));
        assert_eq!(f.len(), 2);
        // An entry with a check in progress is kept over a quieter one.
        let f = Failures::new(2);
        let Admission::Check(held) = f.admit(v4(1)) else {
            panic!("admitted")
        };
        tokio::time::advance(Duration::from_secs(1)).await;
        f.failed(v4(2));
        f.failed(v4(3));
        assert!(f.table.lock().unwrap().contains_key(&v4(1)));
        drop(held);
    }

    #[tokio::test(start_paused = true)]
    async fn one_slot_per_address_and_a_bounded_wait() {
        let f = Failures::new(100);
        let c = v4(1);
        let Admission::Check(slot) = f.admit(c) else {
            panic!("admitted")
        };
        let _held = slot.try_acquire().unwrap();
        let Admission::Check(same) = f.admit(c) else {
            panic!("admitted")
        };
        assert!(
            same.try_acquire().is_err(),
            "one check at a time per address"
        );
        let Admission::Check(other) = f.admit(v4(2)) else {
            panic!("admitted")
        };
        assert!(
            other.try_acquire().is_ok(),
            "other addresses are not held up"
        );
        // `same` waits; up to MAX_WAITING in all.
        let waiting: Vec<_> = (1..MAX_WAITING).map(|_| f.admit(c)).collect();
        assert!(waiting.iter().all(|a| matches!(a, Admission::Check(_))));
        assert_eq!(
            lockout(&f, c),
            Some(Duration::from_secs(1)),
            "too many waiting"
        );
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Client::of(a), Client::of(b));
        assert_ne!(Client::of(a), Client::of(c));
        assert_eq!(Client::of(a).to_string(), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(Client::of(mapped), Client::of("127.0.0.2".parse().unwrap()));
    }
}
