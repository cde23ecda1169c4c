//! Basic auth against bcrypt hashes, with a cache of verified credentials so bcrypt (tens of
//! milliseconds by design) runs once per user and password, not once per scrape; failed
//! logins limited by client address ([`lockout`]); and exporter-toolkit's `rate_limit` token
//! bucket.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use ring::digest;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::http::limits::Throttle;
use crate::http::lockout::{Admission, Client, Failures};

/// How many verified credentials are remembered (exporter-toolkit keeps 100 too).
pub const CACHE_SIZE: usize = 100;

/// How often failed and throttled logins may each be logged.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What outlives a reload: the cache (its keys include the stored hash, so a changed password
/// hash never matches an old entry), the bcrypt gate and the failures by address.
pub struct Verifier {
    /// SHA-256 digests of (user, password, stored hash) that bcrypt accepted, oldest first.
    verified: Arc<Mutex<VecDeque<[u8; 32]>>>,
    /// One bcrypt at a time: each takes a CPU for tens of milliseconds, so a burst of wrong
    /// passwords cannot take every core. Its queue is first come, first served, and each
    /// address has at most one place in it (its slot in `failures`), so a new address waits
    /// for at most one check of each other address, however many requests those send.
    bcrypt: Arc<Semaphore>,
    pub failures: Arc<Failures>,
    /// The warnings about failed and throttled logins.
    pub failed_log: Throttle,
    pub throttled_log: Throttle,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            verified: Arc::new(Mutex::new(VecDeque::with_capacity(CACHE_SIZE))),
            bcrypt: Arc::new(Semaphore::new(1)),
            failures: Arc::default(),
            failed_log: Throttle::new(LOG_EVERY),
            throttled_log: Throttle::new(LOG_EVERY),
        }
    }
}

/// What a login came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A user of the web config and its password.
    Passed,
    /// No credentials, or unreadable ones: refused without a check.
    Missing,
    /// A password check refused them; the lock-out of the address it started, if any.
    Failed(Option<Duration>),
    /// Refused without a check (429): the address is locked out, or already has too many
    /// requests waiting for their check. Retry after this long.
    Throttled(Duration),
}

/// The address's turn ended: its entry goes if it holds nothing more (dropped after the
/// address's slot, which is declared after it).
struct Turn<'a>(&'a Failures, Client);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

impl Verifier {
    /// Whether the `Authorization` header carries a user of `users` and its password, for a
    /// request from `client`. Credentials are never logged.
    pub async fn login(
        &self,
        users: &[(String, String)],
        authorization: Option<&[u8]>,
        client: Client,
    ) -> Outcome {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Outcome::Missing;
        };
        let Some(first) = users.first() else {
            return Outcome::Missing;
        };
        // Every name is compared, in constant time, so the time taken does not tell which
        // users exist; an unknown user is checked against a real hash, and refused.
        let mut found: Option<&str> = None;
        for (name, hash) in users {
            if bool::from(name.as_bytes().ct_eq(user.as_bytes())) {
                found = Some(hash);
            }
        }
        let known = found.is_some();
        let hash = found.unwrap_or(&first.1).to_string();
        let key = cache_key(&user, &password, &hash);
        // Verified credentials cost no check, so they pass even from a locked-out address.
        if known && self.cached(&key) {
            return Outcome::Passed;
        }
        let slot = match self.failures.admit(client) {
            Admission::Refused(retry) => return Outcome::Throttled(retry),
            Admission::Check(slot) => slot,
        };
        let _turn = Turn(&self.failures, client);
        let Ok(slot) = slot.acquire_owned().await else {
            return Outcome::Missing;
        };
        // The address's check before this one may have locked it out, or verified the same
        // credentials.
        if let Some(retry) = self.failures.locked(client) {
            return Outcome::Throttled(retry);
        }
        if known && self.cached(&key) {
            return Outcome::Passed;
        }
        let Ok(permit) = self.bcrypt.clone().acquire_owned().await else {
            return Outcome::Missing;
        };
        // The check owns the bcrypt permit and the address's slot, and counts its own result:
        // a client that hangs up during its check frees neither early (which would let it
        // start more checks than the one thread) and is counted all the same.
        // The credentials are remembered before the slot is freed, so the address's next
        // login with them finds them.
        let (failures, verified) = (self.failures.clone(), self.verified.clone());
        let check = tokio::task::spawn_blocking(move || {
            let ok = bcrypt::verify(password, &hash).unwrap_or(false) && known;
            let outcome = if ok {
                let mut v = verified.lock().unwrap_or_else(PoisonError::into_inner);
                if v.len() >= CACHE_SIZE {
                    v.pop_front();
                }
                v.push_back(key);
                drop(v);
                failures.succeeded(client);
                Outcome::Passed
            } else {
                Outcome::Failed(failures.failed(client))
            };
            drop((permit, slot));
            failures.release(client);
            outcome
        });
        check.await.unwrap_or(Outcome::Missing)
    }

    /// [`Verifier::login`] as a yes or no.
    #[cfg(test)]
    pub async fn check(&self, users: &[(String, String)], authorization: Option<&[u8]>) -> bool {
        let client = Client::of(std::net::Ipv4Addr::LOCALHOST.into());
        self.login(users, authorization, client).await == Outcome::Passed
    }

    /// Whether `key` was verified before; every entry is compared, in constant time. (The
    /// locks here ignore poison: a panic in a request elsewhere leaves the cache whole.)
    fn cached(&self, key: &[u8; 32]) -> bool {
        let v = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        v.iter()
            .fold(subtle::Choice::from(0), |hit, k| hit | k.ct_eq(key))
            .into()
    }
}

/// A digest of the credentials and the hash they were checked against, length-prefixed so no
/// two different triples collide by concatenation.
fn cache_key(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [user, password, hash] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `Basic base64(user:password)` -> (user, password).
fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// exporter-toolkit's `rate_limit`: a token bucket of `burst` tokens, one added every
/// `interval`; a request finding it empty gets 429. It starts full.
pub struct RateLimit {
    pub interval: Duration,
    pub burst: u32,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(interval: Duration, burst: u32) -> RateLimit {
        RateLimit {
            interval,
            burst,
            state: Mutex::new((f64::from(burst), Instant::now())),
        }
    }

    pub fn allow(&self) -> bool {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> bool {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed / self.interval.as_secs_f64()).min(f64::from(self.burst));
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> Vec<u8> {
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {creds}").into_bytes()
    }

    #[tokio::test]
    async fn right_password_passes_and_is_cached() {
        let users = vec![
            ("alice".to_string(), bcrypt::hash("secret", 4).unwrap()),
            ("bob".to_string(), bcrypt::hash("other", 4).unwrap()),
        ];
        let v = Verifier::default();
        assert!(v.check(&users, Some(&header("alice", "secret"))).await);
        assert_eq!(v.verified.lock().unwrap().len(), 1);
        assert!(v.check(&users, Some(&header("alice", "secret"))).await);
        assert_eq!(v.verified.lock().unwrap().len(), 1);
        assert!(!v.check(&users, Some(&header("alice", "wrong"))).await);
        assert!(!v.check(&users, Some(&header("bob", "secret"))).await);
        // Bob's password under a name that does not exist.
        assert!(!v.check(&users, Some(&header("mallory", "other"))).await);
        assert!(!v.check(&users, None).await);
        assert!(!v.check(&users, Some(b"Bearer abc")).await);
        assert!(!v.check(&users, Some(b"Basic !!!")).await);
        assert_eq!(
            v.verified.lock().unwrap().len(),
            1,
            "failures are not cached"
        );
        // A changed hash for the same user and password is verified again.
        let rehashed = vec![("alice".to_string(), bcrypt::hash("secret", 4).unwrap())];
        assert!(v.check(&rehashed, Some(&header("alice", "secret"))).await);
        assert_eq!(v.verified.lock().unwrap().len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_check_whose_client_hung_up_keeps_the_thread_and_is_counted() {
        // Cost 12 (a few hundred ms): the check is still running when its request is dropped.
        let users = vec![("alice".to_string(), bcrypt::hash("secret", 12).unwrap())];
        let v = Arc::new(Verifier::default());
        let client = Client::of(std::net::Ipv4Addr::new(10, 0, 0, 1).into());
        for _ in 1..crate::http::lockout::FAILURE_BUDGET {
            v.failures.failed(client);
        }
        let request = tokio::spawn({
            let (v, users) = (v.clone(), users.clone());
            async move {
                v.login(&users, Some(&header("alice", "wrong")), client)
                    .await
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while v.bcrypt.available_permits() > 0 {
            assert!(Instant::now() < deadline, "the check never started");
            tokio::task::yield_now().await;
        }
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        assert_eq!(
            v.bcrypt.available_permits(),
            0,
            "the check still has the thread"
        );
        let _next = tokio::time::timeout(Duration::from_secs(10), v.bcrypt.acquire())
            .await
            .expect("the check ends");
        assert!(
            v.failures.locked(client).is_some(),
            "the failure was counted: the budget is spent"
        );
    }

    #[test]
    fn cache_keys_are_unambiguous() {
        assert_ne!(cache_key("ab", "c", "h"), cache_key("a", "bc", "h"));
        assert_eq!(cache_key("a", "b", "h"), cache_key("a", "b", "h"));
    }

    #[test]
    fn basic_header_parsing() {
        assert_eq!(
            parse_basic(b"Basic YWxpY2U6czpj"),
            Some(("alice".into(), "s:c".into()))
        );
        assert_eq!(
            parse_basic(b"basic YWxpY2U6"),
            Some(("alice".into(), "".into()))
        );
        assert_eq!(parse_basic(b"Basic YWxpY2U"), None);
    }

    #[test]
    fn bucket_refills_one_token_per_interval() {
        let r = RateLimit::new(Duration::from_secs(1), 2);
        let t0 = Instant::now();
        assert!(r.allow_at(t0));
        assert!(r.allow_at(t0));
        assert!(!r.allow_at(t0));
        assert!(!r.allow_at(t0 + Duration::from_millis(500)));
        assert!(r.allow_at(t0 + Duration::from_millis(1000)));
        assert!(!r.allow_at(t0 + Duration::from_millis(1000)));
        // Never more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert!(r.allow_at(later) && r.allow_at(later) && !r.allow_at(later));
    }
}
