//! Live drift windows: exact histograms on the profile's bins, moments, and a uniform reservoir per feature.

use super::binning::bin_of;
use super::codec::{Reader, Writer};
use super::profile::Profile;
use crate::errors::{Error, Result};
use numpy::ndarray::ArrayView2;
use rayon::prelude::*;
use std::collections::HashMap;

const MAGIC: &[u8] = b"DLWIN\0\0";
const VERSION: u32 = 1;
/// Batches with more values than this update features in parallel.
const PARALLEL_VALUES: usize = 1 << 16;

/// `SplitMix64`: a tiny seeded PRNG for reservoir sampling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift; `n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// One feature's live state.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureWindow {
    /// NaN values seen.
    pub nan: u64,
    /// Counts per profile bin (numeric) or per profile category (categorical).
    pub hist: Vec<u64>,
    /// Categorical: counts of codes the reference never saw, keyed by the code's bits.
    pub new_categories: HashMap<u64, u64>,
    /// Non-NaN values seen.
    pub count: u64,
    /// Running mean (Welford).
    pub mean: f64,
    /// Running sum of squared deviations (Welford).
    pub m2: f64,
    /// Minimum non-NaN value (+inf when none).
    pub min: f64,
    /// Maximum non-NaN value (-inf when none).
    pub max: f64,
    /// Numeric: a uniform sample of the values (all of them while under the cap).
    pub sample: Vec<f64>,
    /// This feature's PRNG.
    pub rng: SplitMix64,
}

impl FeatureWindow {
    fn new(bins: usize, seed: u64) -> Self {
        FeatureWindow {
            nan: 0,
            hist: vec![0; bins],
            new_categories: HashMap::new(),
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sample: Vec::new(),
            rng: SplitMix64(seed),
        }
    }

    /// Standard deviation (ddof 0) of the values seen.
    #[must_use]
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            (self.m2 / self.count as f64).sqrt()
        }
    }

    /// All categories of the window (profile ones and new ones) with counts, sorted by code.
    #[must_use]
    pub fn category_counts(&self, profile_categories: &[f64]) -> (Vec<f64>, Vec<u64>) {
        let mut pairs: Vec<(f64, u64)> = profile_categories
            .iter()
            .copied()
            .zip(self.hist.iter().copied())
            .collect();
        pairs.extend(self.new_categories.iter().map(|(&bits, &c)| (f64::from_bits(bits), c)));
        pairs.retain(|&(_, c)| c > 0);
        pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        pairs.into_iter().unzip()
    }
}

/// The mutable state of a `DriftWindow`.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowState {
    /// Rows seen since the last reset.
    pub n_rows: u64,
    /// Reservoir capacity per numeric feature.
    pub sample_cap: usize,
    /// Seed the window was created with (used again by `reset`).
    pub seed: u64,
    /// One state per feature.
    pub features: Vec<FeatureWindow>,
}

impl WindowState {
    /// An empty window on `profile`.
    #[must_use]
    pub fn new(profile: &Profile, sample_cap: usize, seed: u64) -> Self {
        let mut seeder = SplitMix64(seed);
        let features = profile
            .features
            .iter()
            .map(|f| FeatureWindow::new(f.hist.len(), seeder.next_u64()))
            .collect();
        WindowState {
            n_rows: 0,
            sample_cap,
            seed,
            features,
        }
    }

    /// Clears every count and sample, keeping capacity and seed.
    pub fn reset(&mut self, profile: &Profile) {
        *self = WindowState::new(profile, self.sample_cap, self.seed);
    }

    /// Adds a (rows, features) batch.
    ///
    /// # Errors
    /// `DriftInput` when the batch's feature count differs from the profile's.
    pub fn update<T: Copy + Into<f64> + Sync>(&mut self, profile: &Profile, batch: &ArrayView2<'_, T>) -> Result<()> {
        check_features(profile, batch.ncols())?;
        let cap = self.sample_cap;
        let work = |(j, fw): (usize, &mut FeatureWindow)| {
            let fp = &profile.features[j];
            for &v in batch.column(j) {
                let x: f64 = v.into();
                if x.is_nan() {
                    fw.nan += 1;
                    continue;
                }
                if fp.categorical {
                    let x = x + 0.0;
                    match fp.categories.binary_search_by(|c| c.total_cmp(&x)) {
                        Ok(i) => fw.hist[i] += 1,
                        Err(_) => *fw.new_categories.entry(x.to_bits()).or_insert(0) += 1,
                    }
                } else {
                    fw.hist[bin_of(&fp.edges, x)] += 1;
                    // Algorithm R: the value is the (count + 1)-th; it replaces a slot with probability cap / (count + 1).
                    if fw.sample.len() < cap {
                        fw.sample.push(x);
                    } else {
                        let j = fw.rng.below(fw.count + 1);
                        if (j as usize) < cap {
                            fw.sample[j as usize] = x;
                        }
                    }
                }
                fw.count += 1;
                let delta = x - fw.mean;
                fw.mean += delta / fw.count as f64;
                fw.m2 += delta * (x - fw.mean);
                fw.min = fw.min.min(x);
                fw.max = fw.max.max(x);
            }
        };
        if batch.len() >= PARALLEL_VALUES {
            crate::runtime::pool().install(|| self.features.par_iter_mut().enumerate().for_each(work));
        } else {
            self.features.iter_mut().enumerate().for_each(work);
        }
        self.n_rows += batch.nrows() as u64;
        Ok(())
    }

    /// Merges `other` into `self`: exact for counts and moments; reservoirs become a uniform sample of the union.
    ///
    /// # Errors
    /// `DriftInput` when the two windows do not have the same shape.
    pub fn merge(&mut self, other: &WindowState) -> Result<()> {
        if self.features.len() != other.features.len()
            || self
                .features
                .iter()
                .zip(&other.features)
                .any(|(a, b)| a.hist.len() != b.hist.len())
        {
            return Err(Error::DriftInput(
                "cannot merge drift windows built on different profiles".into(),
            ));
        }
        let cap = self.sample_cap;
        for (a, b) in self.features.iter_mut().zip(&other.features) {
            merge_reservoir(a, b, cap);
            a.nan += b.nan;
            for (x, y) in a.hist.iter_mut().zip(&b.hist) {
                *x += y;
            }
            for (&k, &c) in &b.new_categories {
                *a.new_categories.entry(k).or_insert(0) += c;
            }
            if b.count > 0 {
                let n = a.count + b.count;
                let delta = b.mean - a.mean;
                let mean = a.mean + delta * b.count as f64 / n as f64;
                a.m2 = a.m2 + b.m2 + delta * delta * a.count as f64 * b.count as f64 / n as f64;
                a.mean = mean;
                a.count = n;
                a.min = a.min.min(b.min);
                a.max = a.max.max(b.max);
            }
        }
        self.n_rows += other.n_rows;
        Ok(())
    }

    /// Serialises the window (the profile is not included; `from_bytes` takes it).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u32(VERSION);
        w.u64(self.n_rows);
        w.u64(self.sample_cap as u64);
        w.u64(self.seed);
        w.u64(self.features.len() as u64);
        for f in &self.features {
            w.u64(f.nan);
            w.u64s(&f.hist);
            let mut cats: Vec<(u64, u64)> = f.new_categories.iter().map(|(&k, &c)| (k, c)).collect();
            cats.sort_unstable();
            w.u64(cats.len() as u64);
            for (k, c) in cats {
                w.u64(k);
                w.u64(c);
            }
            w.u64(f.count);
            w.f64(f.mean);
            w.f64(f.m2);
            w.f64(f.min);
            w.f64(f.max);
            w.f64s(&f.sample);
            w.u64(f.rng.0);
        }
        w.buf
    }

    /// Parses [`WindowState::to_bytes`] output for `profile`.
    ///
    /// # Errors
    /// `DriftInput` on malformed data or a window from a different profile.
    pub fn from_bytes(profile: &Profile, data: &[u8]) -> Result<WindowState> {
        let mut r = Reader::new(data, "drift window");
        r.magic(MAGIC)?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(Error::DriftInput(format!(
                "drift window: unsupported format version {version}"
            )));
        }
        let n_rows = r.u64()?;
        let sample_cap = r.u64()? as usize;
        let seed = r.u64()?;
        let n_features = r.u64()? as usize;
        check_features(profile, n_features)?;
        let mut features = Vec::with_capacity(n_features);
        for fp in &profile.features {
            let nan = r.u64()?;
            let hist = r.u64s()?;
            if hist.len() != fp.hist.len() {
                return Err(Error::DriftInput("drift window: bins differ from the profile's".into()));
            }
            let n_cats = r.u64()?;
            let mut new_categories = HashMap::new();
            for _ in 0..n_cats {
                let k = r.u64()?;
                new_categories.insert(k, r.u64()?);
            }
            let count = r.u64()?;
            let (mean, m2, min, max) = (r.f64()?, r.f64()?, r.f64()?, r.f64()?);
            let sample = r.f64s()?;
            let rng = SplitMix64(r.u64()?);
            features.push(FeatureWindow {
                nan,
                hist,
                new_categories,
                count,
                mean,
                m2,
                min,
                max,
                sample,
                rng,
            });
        }
        r.finish()?;
        Ok(WindowState {
            n_rows,
            sample_cap,
            seed,
            features,
        })
    }
}

/// Fails unless `got` equals the profile's feature count.
///
/// # Errors
/// `DriftInput` naming both counts.
pub fn check_features(profile: &Profile, got: usize) -> Result<()> {
    if got == profile.features.len() {
        Ok(())
    } else {
        Err(Error::DriftInput(format!(
            "expected {} features ({}), got {got}",
            profile.features.len(),
            profile.names.join(", ")
        )))
    }
}

/// Merges b's reservoir into a's: a uniform sample (without replacement) of the union of both streams.
fn merge_reservoir(a: &mut FeatureWindow, b: &FeatureWindow, cap: usize) {
    let (pop_a, pop_b) = (a.count, b.count);
    if pop_b == 0 {
        return;
    }
    if (pop_a + pop_b) as usize <= cap && a.sample.len() as u64 == pop_a && b.sample.len() as u64 == pop_b {
        a.sample.extend_from_slice(&b.sample);
        return;
    }
    let k = cap.min(a.sample.len() + b.sample.len());
    let mut left_a = a.sample.clone();
    let mut left_b = b.sample.clone();
    let (mut rem_a, mut rem_b) = (pop_a, pop_b);
    let mut out = Vec::with_capacity(k);
    for _ in 0..k {
        let from_a = if left_b.is_empty() {
            true
        } else if left_a.is_empty() {
            false
        } else {
            a.rng.below(rem_a + rem_b) < rem_a
        };
        let src = if from_a { &mut left_a } else { &mut left_b };
        let idx = a.rng.below(src.len() as u64) as usize;
        out.push(src.swap_remove(idx));
        if from_a {
            rem_a = rem_a.saturating_sub(1);
        } else {
            rem_b = rem_b.saturating_sub(1);
        }
    }
    a.sample = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use numpy::ndarray::{array, Array2};

    fn profile() -> Profile {
        let data = array![[1.0, 0.0], [2.0, 1.0], [3.0, 1.0], [4.0, 2.0]];
        Profile::build(&data.view(), vec!["x".into(), "c".into()], vec![false, true], 4).expect("test input is valid")
    }

    #[test]
    fn update_counts_bins_categories_and_moments() {
        let p = profile();
        let mut w = WindowState::new(&p, 10, 1);
        let batch = array![[1.0, 0.0], [5.0, 7.0], [f64::NAN, 1.0]];
        w.update(&p, &batch.view()).expect("test input is valid");
        assert_eq!(w.n_rows, 3);
        let x = &w.features[0];
        assert_eq!(x.nan, 1);
        assert_eq!(x.hist, vec![1, 0, 0, 1]);
        assert_eq!(x.sample, vec![1.0, 5.0]);
        assert_eq!((x.count, x.mean, x.std()), (2, 3.0, 2.0));
        let c = &w.features[1];
        assert_eq!(c.hist, vec![1, 1, 0]);
        assert_eq!(c.new_categories.get(&7.0_f64.to_bits()), Some(&1));
        assert_eq!(
            c.category_counts(&p.features[1].categories),
            (vec![0.0, 1.0, 7.0], vec![1, 1, 1])
        );
        assert!(w.update(&p, &array![[1.0]].view()).is_err());
    }

    #[test]
    fn reservoir_stays_capped_and_merge_is_exact_for_counts() {
        let p = profile();
        let mut a = WindowState::new(&p, 50, 1);
        let mut b = WindowState::new(&p, 50, 2);
        let big = Array2::from_shape_fn((200, 2), |(i, j)| if j == 0 { i as f64 } else { (i % 3) as f64 });
        a.update(&p, &big.view()).expect("test input is valid");
        b.update(&p, &big.view()).expect("test input is valid");
        assert_eq!(a.features[0].sample.len(), 50);
        a.merge(&b).expect("test input is valid");
        assert_eq!(a.n_rows, 400);
        assert_eq!(a.features[0].count, 400);
        assert_eq!(a.features[0].sample.len(), 50);
        assert_eq!(a.features[1].hist, vec![134, 134, 132]);
        assert!((a.features[0].mean - 99.5).abs() < 1e-12);
        let back = WindowState::from_bytes(&p, &a.to_bytes()).expect("test input is valid");
        assert_eq!(back, a);
        a.reset(&p);
        assert_eq!(a.n_rows, 0);
        assert_eq!(a.features[0].count, 0);
    }
}
