//! Choosing a replica: round robin, least connections, weighted, adaptive, and session affinity.
//!
//! The balancer sees replicas through a `view(i) -> Option<ReplicaLoad>` (`None`: not available
//! now: down, or its breaker open), so the hot path allocates nothing and takes no lock: a pick is
//! an atomic counter bump plus a scan of the (few) replicas.
//!
//! - `round_robin`: the next available replica in turn.
//! - `weighted`: a smooth weighted round robin schedule (nginx's), computed once, walked with
//!   the same counter: weights 1, 2, 7 give 1/10, 2/10 and 7/10 of the requests, interleaved.
//! - `least_connections`: the available replica with the fewest requests in flight (ties go
//!   round robin).
//! - `adaptive`: power of two choices over a latency score, `ewma_latency × (in_flight + 1)`:
//!   two distinct random available replicas, the lower score wins. A replica without samples
//!   scores 0 (so it gets tried), and one pick in 32 skips the comparison so that a replica
//!   that was slow keeps being sampled and can win its traffic back.
//!
//! Affinity (`pick_affine`): weighted rendezvous hashing of a session key; a session keeps its
//! replica as long as that replica is available, and only the sessions of a replica that goes
//! away move.
//!
//! A weight of 0 drains a replica: it is chosen only when no replica with a weight is available.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

/// How requests are spread over replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    RoundRobin,
    LeastConnections,
    Weighted,
    Adaptive,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastConnections => "least_connections",
            Strategy::Weighted => "weighted",
            Strategy::Adaptive => "adaptive",
        }
    }
}

/// What the balancer needs to know of an available replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaLoad {
    pub in_flight: u32,
    /// Smoothed latency in microseconds; 0 when there is no sample yet.
    pub ewma_us: u64,
}

/// The replica chooser of one server.
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    weights: Vec<u32>,
    /// The weighted schedule (replica indices), for `weighted`.
    schedule: Vec<usize>,
    next: AtomicU64,
    /// xorshift state for `adaptive`.
    rng: AtomicU64,
}

impl Balancer {
    /// `weights` has one entry per replica.
    pub fn new(strategy: Strategy, weights: &[u32]) -> Self {
        Self::with_seed(strategy, weights, rand::random::<u64>() | 1)
    }

    /// Deterministic randomness, for tests.
    pub fn with_seed(strategy: Strategy, weights: &[u32], seed: u64) -> Self {
        Self {
            strategy,
            weights: weights.to_vec(),
            schedule: smooth_schedule(weights),
            next: AtomicU64::new(0),
            rng: AtomicU64::new(seed | 1),
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The replica for one stateless request, or `None` when none is available.
    pub fn pick(&self, view: impl Fn(usize) -> Option<ReplicaLoad>) -> Option<usize> {
        let n = self.weights.len();
        if n == 0 {
            return None;
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let weighted = |i: usize| self.weights[i] > 0 && view(i).is_some();
        let chosen = match self.strategy {
            Strategy::RoundRobin => (0..n).map(|k| (turn as usize + k) % n).find(|&i| weighted(i)),
            Strategy::Weighted => {
                let len = self.schedule.len();
                (0..len).map(|k| self.schedule[(turn as usize + k) % len]).find(|&i| weighted(i))
            }
            Strategy::LeastConnections => (0..n)
                .map(|k| (turn as usize + k) % n)
                .filter_map(|i| (self.weights[i] > 0).then(|| view(i).map(|l| (i, l.in_flight))).flatten())
                .min_by_key(|&(_, load)| load)
                .map(|(i, _)| i),
            Strategy::Adaptive => self.two_choices(n, turn, &view),
        };
        // Drained replicas (weight 0) serve only when nothing else can.
        chosen.or_else(|| (0..n).map(|k| (turn as usize + k) % n).find(|&i| view(i).is_some()))
    }

    fn two_choices(
        &self,
        n: usize,
        turn: u64,
        view: &impl Fn(usize) -> Option<ReplicaLoad>,
    ) -> Option<usize> {
        let r = self.random();
        let avail = |i: usize| if self.weights[i] > 0 { view(i) } else { None };
        let count = (0..n).filter(|&i| avail(i).is_some()).count();
        if count == 0 {
            return None;
        }
        let nth = |k: usize| (0..n).filter(|&i| avail(i).is_some()).nth(k);
        let a = nth((r % count as u64) as usize)?;
        if count == 1 {
            return Some(a);
        }
        let b_k = ((r >> 32) % (count as u64 - 1)) as usize;
        let a_k = (r % count as u64) as usize;
        let b = nth(if b_k >= a_k { b_k + 1 } else { b_k })?;
        if turn % 32 == 31 {
            return Some(a);
        }
        let score = |i: usize| avail(i).map_or(u128::MAX, |l| l.ewma_us as u128 * (l.in_flight as u128 + 1));
        Some(if score(b) < score(a) { b } else { a })
    }

    fn random(&self) -> u64 {
        // xorshift64*; a lost update between threads only repeats a number.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The replica for a session's stateful request: the same one for the same `key` while it
    /// is available.
    pub fn pick_affine(&self, key: u64, view: impl Fn(usize) -> Option<ReplicaLoad>) -> Option<usize> {
        let n = self.weights.len();
        let best = |weighted: bool| {
            (0..n)
                .filter(|&i| (!weighted || self.weights[i] > 0) && view(i).is_some())
                .map(|i| {
                    let u = (mix(key ^ mix(i as u64 + 1)) >> 11) as f64 / (1u64 << 53) as f64;
                    let w = f64::from(self.weights[i].max(1));
                    // Weighted rendezvous: the largest u^(1/w) wins.
                    (i, u.max(f64::MIN_POSITIVE).ln() / w)
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
        };
        best(true).or_else(|| best(false))
    }
}

/// A session's affinity key.
pub fn affinity_key(session: u64) -> u64 {
    mix(session)
}

/// splitmix64's finalizer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// nginx's smooth weighted round robin, unrolled into one period (sum of weights, capped).
fn smooth_schedule(weights: &[u32]) -> Vec<usize> {
    let scale = weights.iter().map(|&w| u64::from(w)).sum::<u64>();
    // Keep the period bounded for huge weights: scale them down to a total of about 1,000.
    let div = (scale / 1000).max(1);
    let w: Vec<i64> = weights.iter().map(|&x| (u64::from(x) / div) as i64).collect();
    let total: i64 = w.iter().sum();
    if total == 0 {
        return (0..weights.len()).collect();
    }
    let mut current = vec![0i64; w.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, wi) in current.iter_mut().zip(&w) {
            *c += wi;
        }
        let best = (0..w.len()).max_by_key(|&i| (current[i], std::cmp::Reverse(i))).unwrap_or(0);
        current[best] -= total;
        out.push(best);
    }
    out
}
