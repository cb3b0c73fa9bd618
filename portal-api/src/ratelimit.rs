//! Per-client rate limiting of public lookups (tracking pages, their JSON and
//! WebSockets), so nobody can enumerate tracking codes. A token bucket per client
//! address: a burst for normal page loads, then a steady trickle. With 120-bit
//! codes enumeration is hopeless anyway; the limit also keeps one client from
//! monopolising the database.
//!
//! IPv6 clients are bucketed by their /64, since one host usually owns a whole /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use parking_lot::Mutex;

/// Buckets kept before full ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token bucket per client address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    burst: f64,
    per_s: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
    }
}

impl RateLimiter {
    pub(crate) fn new(burst: u32, per_s: f64) -> RateLimiter {
        RateLimiter {
            burst: f64::from(burst),
            per_s,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; `Err(seconds)` says how long until one is free.
    pub(crate) fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock();
        if buckets.len() > SWEEP_ABOVE {
            let (burst, per_s) = (self.burst, self.per_s);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_s < burst
            });
        }
        let bucket = buckets.entry(client_key(ip)).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let refill = now.saturating_duration_since(bucket.updated).as_secs_f64() * self.per_s;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait_s = ((1.0 - bucket.tokens) / self.per_s).ceil();
            Err(wait_s.max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_a_trickle() {
        let limiter = RateLimiter::new(5, 1.0);
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check(ip, t0).is_ok());
        }
        assert_eq!(limiter.check(ip, t0), Err(1));
        assert!(limiter.check(ip, t0 + Duration::from_millis(1100)).is_ok());
        assert!(limiter.check(ip, t0 + Duration::from_millis(1100)).is_err());
    }

    #[test]
    fn clients_do_not_share_buckets_but_a_v6_slash_64_does() {
        let limiter = RateLimiter::new(1, 0.01);
        let t0 = Instant::now();
        assert!(limiter.check("192.0.2.1".parse().expect("ip"), t0).is_ok());
        assert!(limiter.check("192.0.2.2".parse().expect("ip"), t0).is_ok());
        assert!(
            limiter
                .check("2001:db8::1".parse().expect("ip"), t0)
                .is_ok()
        );
        assert!(
            limiter
                .check("2001:db8::2".parse().expect("ip"), t0)
                .is_err()
        );
    }
}
