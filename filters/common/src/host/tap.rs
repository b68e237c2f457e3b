//! The host side of [`crate::tap::Budget`]: sampling and the per-worker rate
//! in this VM, the plugin-wide record count in shared data.

use super::calls::{first_property, now_nanos, set_shared_data, shared_data, SharedDataError};
use crate::tap::ratelimit::{Sampler, TokenBucket};
use crate::tap::Budget;
use std::cell::RefCell;

pub struct RecordBudget {
    sample_percent: f64,
    sampler: RefCell<Sampler>,
    bucket: Option<RefCell<TokenBucket>>,
    max_records: Option<u64>,
    /// Shared-data key counting records across workers, for `max_records`.
    count_key: String,
}

impl RecordBudget {
    pub fn new(filter: &str, budget: &Budget) -> RecordBudget {
        let plugin = first_property(&[&["plugin_name"]]).unwrap_or_default();
        RecordBudget {
            sample_percent: budget.sample_percent,
            sampler: RefCell::new(Sampler::new(now_nanos())),
            bucket: budget
                .rate_limit
                .map(|r| RefCell::new(TokenBucket::new(r.records_per_second, r.burst))),
            max_records: budget.max_records,
            count_key: format!("{filter}/{}/records", String::from_utf8_lossy(&plugin)),
        }
    }

    /// Whether this stream or connection is in the sample.
    pub fn sample(&self) -> bool {
        self.sampler.borrow_mut().sample(self.sample_percent)
    }

    /// The per-worker rate and the plugin-wide record count both allow one more.
    pub fn take(&self) -> bool {
        if let Some(bucket) = &self.bucket {
            if !bucket.borrow_mut().try_take(now_nanos()) {
                return false;
            }
        }
        match self.max_records {
            Some(max) => take_record_slot(&self.count_key, max),
            None => true,
        }
    }
}

/// Counts one record in shared data (all workers' VMs see it), unless `max`
/// were already written. Compare-and-swap, retried a few times under contention.
fn take_record_slot(key: &str, max: u64) -> bool {
    for _ in 0..8 {
        let (value, cas) = shared_data(key);
        let count = value
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        if count >= max {
            return false;
        }
        match set_shared_data(key, &(count + 1).to_le_bytes(), cas) {
            Ok(()) => return true,
            Err(SharedDataError::CasMismatch) => continue,
            Err(_) => return false,
        }
    }
    false
}
