//! The reference profile: per feature, the sorted reference values, quantile edges and counts, built once.

use super::binning::{distinct_sorted, histogram_sorted, quantile_edges, value_counts_sorted};
use super::codec::{Reader, Writer};
use super::wasserstein::std_ddof0;
use crate::errors::{Error, Result};
use numpy::ndarray::ArrayView2;
use rayon::prelude::*;

const MAGIC: &[u8] = b"DLPROF\0";
const VERSION: u32 = 1;
/// Upper bound on the numeric bin count (a histogram per feature per window is kept in memory).
pub const MAX_BINS: usize = 100_000;

/// One feature of the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureProfile {
    /// Categorical (integer codes) or numeric.
    pub categorical: bool,
    /// NaN (missing) values in the reference.
    pub nan_count: u64,
    /// Numeric: the non-NaN reference values, sorted. Categorical: empty.
    pub sorted: Vec<f64>,
    /// Numeric: the `bins - 1` quantile edges. Categorical: empty.
    pub edges: Vec<f64>,
    /// Categorical: the sorted distinct codes. Numeric: empty.
    pub categories: Vec<f64>,
    /// Counts per bin (numeric, `bins` long) or per category.
    pub hist: Vec<u64>,
    /// `std(ref, ddof=0)` of a numeric feature (NaN when empty or categorical).
    pub std: f64,
    /// Distinct non-NaN values.
    pub distinct: u64,
}

impl FeatureProfile {
    /// Builds a feature from its non-NaN values (any order) and NaN count.
    #[must_use]
    pub fn build(mut values: Vec<f64>, nan_count: u64, categorical: bool, bins: usize) -> Self {
        sort_values(&mut values);
        let distinct = distinct_sorted(&values) as u64;
        if categorical {
            let (categories, hist) = value_counts_sorted(&values);
            FeatureProfile {
                categorical,
                nan_count,
                sorted: Vec::new(),
                edges: Vec::new(),
                categories,
                hist,
                std: f64::NAN,
                distinct,
            }
        } else {
            let edges = if values.is_empty() {
                vec![f64::NAN; bins - 1]
            } else {
                quantile_edges(&values, bins)
            };
            let hist = if values.is_empty() {
                vec![0; bins]
            } else {
                histogram_sorted(&edges, &values)
            };
            let std = std_ddof0(&values);
            FeatureProfile {
                categorical,
                nan_count,
                sorted: values,
                edges,
                categories: Vec::new(),
                hist,
                std,
                distinct,
            }
        }
    }

    /// Non-NaN values in the reference.
    #[must_use]
    pub fn n(&self) -> u64 {
        self.hist.iter().sum()
    }
}

/// Sorts non-NaN values ascending (`-0.0` before `0.0`, infinities at the ends).
pub fn sort_values(values: &mut [f64]) {
    super::sort::sort_f64(values);
}

/// Reads column `j` of a (rows, features) view: the non-NaN values as f64 and the NaN count.
/// Categorical codes are normalised so that `-0.0` and `0.0` are one category.
#[must_use]
pub fn column_values<T: Copy + Into<f64>>(data: &ArrayView2<'_, T>, j: usize, categorical: bool) -> (Vec<f64>, u64) {
    let col = data.column(j);
    let mut out = Vec::with_capacity(col.len());
    let mut nan = 0;
    for &v in col {
        let x: f64 = v.into();
        if x.is_nan() {
            nan += 1;
        } else {
            out.push(if categorical { x + 0.0 } else { x });
        }
    }
    (out, nan)
}

/// The reference side of every comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Feature names, in column order.
    pub names: Vec<String>,
    /// One profile per feature.
    pub features: Vec<FeatureProfile>,
    /// Numeric bin count (PSI, JS, KL, Hellinger).
    pub bins: usize,
    /// Reference rows, NaN included.
    pub n_rows: u64,
}

impl Profile {
    /// Builds the profile from a (rows, features) view, features in parallel on the crate pool.
    ///
    /// # Errors
    /// `DriftInput` when names/kinds do not match the column count or `bins < 2`.
    pub fn build<T: Copy + Into<f64> + Sync>(
        data: &ArrayView2<'_, T>,
        names: Vec<String>,
        categorical: Vec<bool>,
        bins: usize,
    ) -> Result<Profile> {
        let n_features = data.ncols();
        if names.len() != n_features || categorical.len() != n_features {
            return Err(Error::DriftInput(format!(
                "reference has {n_features} feature columns but {} names and {} categorical flags were given",
                names.len(),
                categorical.len()
            )));
        }
        if !(2..=MAX_BINS).contains(&bins) {
            return Err(Error::DriftInput(format!(
                "bins must be between 2 and {MAX_BINS}, got {bins}"
            )));
        }
        let features = crate::runtime::pool().install(|| {
            (0..n_features)
                .into_par_iter()
                .map(|j| {
                    let (values, nan) = column_values(data, j, categorical[j]);
                    FeatureProfile::build(values, nan, categorical[j], bins)
                })
                .collect()
        });
        Ok(Profile {
            names,
            features,
            bins,
            n_rows: data.nrows() as u64,
        })
    }

    /// Fails unless `index` names a feature.
    ///
    /// # Errors
    /// `DriftInput` naming the index and the feature count.
    pub fn feature(&self, index: usize) -> Result<&FeatureProfile> {
        self.features.get(index).ok_or_else(|| {
            Error::DriftInput(format!(
                "feature index {index} out of range for {} features",
                self.features.len()
            ))
        })
    }

    /// The versioned little-endian format: magic, version, bins, rows, then each feature.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u32(VERSION);
        w.u64(self.bins as u64);
        w.u64(self.n_rows);
        w.u64(self.features.len() as u64);
        for (name, f) in self.names.iter().zip(&self.features) {
            w.str(name);
            w.u8(u8::from(f.categorical));
            w.u64(f.nan_count);
            w.f64s(&f.sorted);
            w.f64s(&f.edges);
            w.f64s(&f.categories);
            w.u64s(&f.hist);
            w.f64(f.std);
            w.u64(f.distinct);
        }
        w.buf
    }

    /// Parses [`Profile::to_bytes`] output.
    ///
    /// # Errors
    /// `DriftInput` on a bad magic, unknown version, truncation or inconsistent lengths.
    pub fn from_bytes(data: &[u8]) -> Result<Profile> {
        let mut r = Reader::new(data, "reference profile");
        r.magic(MAGIC)?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(Error::DriftInput(format!(
                "reference profile: unsupported format version {version}"
            )));
        }
        let bins = r.u64()? as usize;
        let n_rows = r.u64()?;
        let n_features = r.u64()?;
        let mut names = Vec::new();
        let mut features = Vec::new();
        for _ in 0..n_features {
            names.push(r.str()?);
            let categorical = r.u8()? != 0;
            let nan_count = r.u64()?;
            let sorted = r.f64s()?;
            let edges = r.f64s()?;
            let categories = r.f64s()?;
            let hist = r.u64s()?;
            let std = r.f64()?;
            let distinct = r.u64()?;
            let consistent = if categorical {
                hist.len() == categories.len()
            } else {
                hist.len() == bins && edges.len() + 1 == bins.max(1)
            };
            if !consistent {
                return Err(Error::DriftInput(format!(
                    "reference profile: feature {:?} has inconsistent bin counts",
                    names.last().map_or("", String::as_str)
                )));
            }
            features.push(FeatureProfile {
                categorical,
                nan_count,
                sorted,
                edges,
                categories,
                hist,
                std,
                distinct,
            });
        }
        r.finish()?;
        Ok(Profile {
            names,
            features,
            bins,
            n_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numpy::ndarray::array;

    #[test]
    fn build_and_round_trip() {
        let data = array![[1.0, 0.0], [2.0, 1.0], [f64::NAN, 1.0], [4.0, 2.0], [3.0, f64::NAN]];
        let p = Profile::build(&data.view(), vec!["x".into(), "c".into()], vec![false, true], 4)
            .expect("test input is valid");
        assert_eq!(p.n_rows, 5);
        let x = &p.features[0];
        assert_eq!(x.sorted, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(x.nan_count, 1);
        assert_eq!(x.edges, vec![1.75, 2.5, 3.25]);
        assert_eq!(x.hist, vec![1, 1, 1, 1]);
        let c = &p.features[1];
        assert_eq!(c.categories, vec![0.0, 1.0, 2.0]);
        assert_eq!(c.hist, vec![1, 2, 1]);
        let back = Profile::from_bytes(&p.to_bytes()).expect("test input is valid");
        assert_eq!(back.names, p.names);
        assert_eq!(back.features[0].sorted, p.features[0].sorted);
        assert!(Profile::from_bytes(&p.to_bytes()[..20]).is_err());
        assert!(Profile::from_bytes(b"nonsense").is_err());
    }

    #[test]
    fn mismatched_names_are_an_error() {
        let data = array![[1.0, 2.0]];
        assert!(Profile::build(&data.view(), vec!["a".into()], vec![false, false], 10).is_err());
        assert!(Profile::build(&data.view(), vec!["a".into(), "b".into()], vec![false, false], 1).is_err());
    }
}
