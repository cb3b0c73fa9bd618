//! A mergeable histogram of non-negative seconds (absolute ETA errors, window
//! widths) with bins whose edges grow by 2 % each: what a day's accuracy
//! aggregate keeps instead of its raw values, so the median and p90 of any
//! range of days can be read from a few sketches per day rather than from
//! every prediction. A quantile read from it lies within 1 % of the value the
//! nearest rank picks from the raw values (each bin's representative is its
//! geometric middle); values under one second share bin 0 and read as 0.
//!
//! The blob form (`to_bytes`/`from_bytes`) is what the store keeps: a version
//! byte, then (bin `u16`, count `u32`) pairs little-endian, bins ascending.
//! A blob that does not decode is an error, never a panic.

use std::collections::BTreeMap;

/// Growth of a bin's upper edge over its lower one.
const GAMMA: f64 = 1.02;
/// The blob's format version.
const VERSION: u8 = 1;
/// Bins past this hold nothing real: 1.02^2000 s is far beyond any ETA.
const MAX_BIN: u16 = 2000;

/// Counts of values per logarithmic bin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    bins: BTreeMap<u16, u64>,
    n: u64,
}

impl Sketch {
    /// Counts one value (negative values count as their absolute value, NaN
    /// as 0).
    pub fn add(&mut self, value_s: f64) {
        *self.bins.entry(bin_of(value_s)).or_default() += 1;
        self.n += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for (&bin, &count) in &other.bins {
            *self.bins.entry(bin).or_default() += count;
        }
        self.n += other.n;
    }

    /// Values counted.
    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `q`-quantile by nearest rank (the `⌈q·n⌉`-th smallest value), read
    /// as its bin's middle; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((self.n as f64 * q).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (&bin, &count) in &self.bins {
            seen += count;
            if seen >= rank {
                return Some(middle_of(bin));
            }
        }
        self.bins.keys().next_back().map(|&b| middle_of(b))
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.bins.len() * 6);
        out.push(VERSION);
        for (&bin, &count) in &self.bins {
            // A day's bin never holds four billion predictions; saturate
            // rather than wrap if it ever did.
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            out.extend_from_slice(&bin.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Reads the stored form back.
    pub fn from_bytes(bytes: &[u8]) -> Result<Sketch, String> {
        let Some((&version, pairs)) = bytes.split_first() else {
            return Err("an empty sketch blob".into());
        };
        if version != VERSION {
            return Err(format!("sketch format {version}, expected {VERSION}"));
        }
        if pairs.len() % 6 != 0 {
            return Err(format!(
                "a sketch blob of {} bytes is cut short",
                bytes.len()
            ));
        }
        let mut sketch = Sketch::default();
        let mut last: Option<u16> = None;
        for pair in pairs.chunks_exact(6) {
            let bin = u16::from_le_bytes([pair[0], pair[1]]);
            let count = u32::from_le_bytes([pair[2], pair[3], pair[4], pair[5]]);
            if bin > MAX_BIN || last.is_some_and(|l| bin <= l) {
                return Err(format!("sketch bin {bin} out of order or range"));
            }
            last = Some(bin);
            sketch.bins.insert(bin, u64::from(count));
            sketch.n += u64::from(count);
        }
        Ok(sketch)
    }
}

/// Bin 0 holds values under 1 s; bin k ≥ 1 holds [γ^(k−1), γ^k).
fn bin_of(value_s: f64) -> u16 {
    let v = value_s.abs();
    if v.is_nan() || v < 1.0 {
        return 0;
    }
    let k = (v.ln() / GAMMA.ln()).floor() + 1.0;
    if k >= f64::from(MAX_BIN) {
        MAX_BIN
    } else {
        k as u16
    }
}

/// The geometric middle of a bin: within 1 % of every value in it.
fn middle_of(bin: u16) -> f64 {
    if bin == 0 {
        0.0
    } else {
        GAMMA.powf(f64::from(bin) - 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::nearest_rank;

    /// A deterministic spread of errors from 0 to a few hours.
    fn errors(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                // Heavy-tailed, as ETA errors are.
                (u * u * 14_400.0 * 100.0).round() / 100.0
            })
            .collect()
    }

    #[test]
    fn quantiles_lie_within_one_percent_of_the_nearest_rank() {
        let values = errors(10_000, 7);
        let mut sketch = Sketch::default();
        values.iter().for_each(|&v| sketch.add(v));
        for q in [0.1, 0.5, 0.9, 0.99] {
            let exact = nearest_rank(&values, q);
            let read = sketch.quantile(q).expect("not empty");
            assert!(
                (read - exact).abs() <= exact * 0.0101 + 1.0,
                "q {q}: exact {exact}, sketch {read}"
            );
        }
    }

    #[test]
    fn merged_days_read_as_one_sketch_of_all_their_values() {
        let (a, b) = (errors(3_000, 1), errors(5_000, 2));
        let (mut sa, mut sb, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        a.iter().for_each(|&v| sa.add(v));
        b.iter().for_each(|&v| sb.add(v));
        a.iter().chain(&b).for_each(|&v| all.add(v));
        sa.merge(&sb);
        assert_eq!(sa, all);
        assert_eq!(sa.len(), 8_000);
    }

    #[test]
    fn the_blob_round_trips_and_a_damaged_one_is_an_error() {
        let mut sketch = Sketch::default();
        errors(500, 3).iter().for_each(|&v| sketch.add(v));
        sketch.add(f64::NAN);
        sketch.add(1e300);
        let bytes = sketch.to_bytes();
        assert_eq!(Sketch::from_bytes(&bytes), Ok(sketch));
        assert!(Sketch::from_bytes(&[]).is_err());
        assert!(Sketch::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(Sketch::from_bytes(&[9]).is_err());
        // Bins out of order.
        assert!(Sketch::from_bytes(&[1, 5, 0, 1, 0, 0, 0, 4, 0, 1, 0, 0, 0]).is_err());
    }

    #[test]
    fn an_empty_sketch_has_no_quantile_and_sub_second_errors_read_as_zero() {
        assert_eq!(Sketch::default().quantile(0.5), None);
        let mut sketch = Sketch::default();
        sketch.add(0.4);
        assert_eq!(sketch.quantile(0.5), Some(0.0));
    }
}
