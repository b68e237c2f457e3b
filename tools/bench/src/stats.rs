//! Medians and spreads of repeated measurements.

/// The median (the upper one of an even count); NaN when there is nothing.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The smallest and the largest of repeated measurements.
pub struct Spread {
    pub min: f64,
    pub max: f64,
}

pub fn spread(v: &[f64]) -> Spread {
    Spread {
        min: v.iter().copied().fold(f64::INFINITY, f64::min),
        max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}
