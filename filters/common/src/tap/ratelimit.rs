//! Rate limiting for records, on a clock the caller passes in (host time in
//! the filter, a fake one in tests).

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_nanos: u64,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last_nanos: 0,
        }
    }

    /// Takes one token if there is one at `now_nanos`.
    pub fn try_take(&mut self, now_nanos: u64) -> bool {
        if self.last_nanos != 0 && now_nanos > self.last_nanos {
            let elapsed = (now_nanos - self.last_nanos) as f64 / 1e9;
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        }
        if self.last_nanos == 0 || now_nanos > self.last_nanos {
            self.last_nanos = now_nanos;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A small, fast pseudo-random source for sampling decisions (xorshift64*).
/// Sampling needs no cryptographic quality, only a fair spread.
#[derive(Debug, Clone)]
pub struct Sampler(u64);

impl Sampler {
    pub fn new(seed: u64) -> Sampler {
        Sampler(seed | 1)
    }

    /// True with probability `percent` / 100.
    pub fn sample(&mut self, percent: f64) -> bool {
        if percent >= 100.0 {
            return true;
        }
        if percent <= 0.0 {
            return false;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (r as f64 / (1u64 << 53) as f64) * 100.0 < percent
    }
}
