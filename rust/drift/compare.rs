//! Comparing a current window (array or live window) against a profile: every requested statistic per feature.

use super::anderson::anderson_ksamp;
use super::binning::{bin_of, histogram_closed, histogram_sorted, sturges_edges, union_counts, value_counts_sorted};
use super::chi2::{chi2_contingency, chi2_gof};
use super::cvm::cramervonmises_2samp;
use super::fisher::fisher_exact;
use super::hellinger::hellinger;
use super::js::jensenshannon;
use super::kl::kl_divergence;
use super::ks::ks_2samp;
use super::profile::{column_values, sort_values, FeatureProfile, Profile};
use super::psi::{evidently_fill, floored, proportions, psi, psi_evidently};
use super::wasserstein::{wasserstein, wasserstein_norm};
use super::window::{check_features, WindowState};
use super::{Binning, Stat};
use crate::errors::Result;
use numpy::ndarray::ArrayView2;
use rayon::prelude::*;

/// Floor applied to proportions for PSI and KL in quantile binning (docs/drift.md).
pub const PROPORTION_FLOOR: f64 = 1e-4;

/// The current side of one feature, from an array or a window.
#[derive(Clone, Debug, Default)]
pub struct CurrentFeature {
    /// Numeric: sorted values (all of them, or the window's sample). Empty when not needed.
    pub sorted: Vec<f64>,
    /// Numeric: counts on the profile's bins (exact, also for windows).
    pub hist: Vec<u64>,
    /// Categorical: sorted codes and their counts.
    pub categories: (Vec<f64>, Vec<u64>),
    /// Non-NaN values.
    pub n: u64,
    /// NaN values.
    pub nan: u64,
    /// Whether `sorted` is a sample smaller than `n`.
    pub sampled: bool,
}

/// What the requested statistics need from the current side.
#[derive(Clone, Copy)]
struct Needs {
    values: bool,
    /// Whether any requested statistic applies to categorical features at all.
    categories: bool,
}

fn needs(stats: &[Stat], binning: Binning) -> Needs {
    Needs {
        values: binning == Binning::Evidently || stats.iter().any(|s| s.needs_values()),
        categories: stats.iter().any(|s| s.categorical()),
    }
}

/// Current features from a (rows, features) array, in parallel.
///
/// # Errors
/// `DriftInput` when the feature count differs from the profile's.
pub fn current_from_array<T: Copy + Into<f64> + Sync>(
    profile: &Profile,
    data: &ArrayView2<'_, T>,
    stats: &[Stat],
    binning: Binning,
) -> Result<Vec<CurrentFeature>> {
    check_features(profile, data.ncols())?;
    let need = needs(stats, binning);
    Ok(crate::runtime::pool().install(|| {
        profile
            .features
            .par_iter()
            .enumerate()
            .map(|(j, fp)| {
                if fp.categorical && !need.categories {
                    // Only the counts are reported for it (ks on a categorical feature is NaN): skip the sort.
                    let nan = data.column(j).iter().filter(|&&v| v.into().is_nan()).count() as u64;
                    let n = data.nrows() as u64 - nan;
                    return CurrentFeature {
                        n,
                        nan,
                        ..CurrentFeature::default()
                    };
                }
                let (mut values, nan) = column_values(data, j, fp.categorical);
                let n = values.len() as u64;
                if fp.categorical {
                    sort_values(&mut values);
                    let categories = value_counts_sorted(&values);
                    CurrentFeature {
                        categories,
                        n,
                        nan,
                        ..CurrentFeature::default()
                    }
                } else if need.values {
                    sort_values(&mut values);
                    let hist = histogram_sorted(&fp.edges, &values);
                    CurrentFeature {
                        sorted: values,
                        hist,
                        n,
                        nan,
                        ..CurrentFeature::default()
                    }
                } else {
                    // Copy-then-bin measured faster than binning straight from the strided column (the copy
                    // streams; the binning loop then runs on contiguous values).
                    let mut hist = vec![0; fp.edges.len() + 1];
                    for &x in &values {
                        hist[bin_of(&fp.edges, x)] += 1;
                    }
                    CurrentFeature {
                        hist,
                        n,
                        nan,
                        ..CurrentFeature::default()
                    }
                }
            })
            .collect()
    }))
}

/// One feature's chart counts: per bin or known category, and (code, count) of codes the reference never saw.
pub type ChartCounts = (Vec<u64>, Vec<(f64, u64)>);

/// Per feature of a current array: counts on the profile's bins (numeric) or categories (categorical), and the
/// counts of categorical codes the reference never saw. For report charts; in parallel, one pass per column.
///
/// # Errors
/// `DriftInput` when the feature count differs from the profile's.
pub fn histograms_of_array<T: Copy + Into<f64> + Sync>(
    profile: &Profile,
    data: &ArrayView2<'_, T>,
) -> Result<Vec<ChartCounts>> {
    check_features(profile, data.ncols())?;
    Ok(crate::runtime::pool().install(|| {
        profile
            .features
            .par_iter()
            .enumerate()
            .map(|(j, fp)| {
                let column = data.column(j);
                if !fp.categorical {
                    let mut counts = vec![0_u64; fp.edges.len() + 1];
                    for &v in column {
                        let x: f64 = v.into();
                        if !x.is_nan() {
                            counts[bin_of(&fp.edges, x)] += 1;
                        }
                    }
                    return (counts, Vec::new());
                }
                let mut counts = vec![0_u64; fp.categories.len()];
                let mut new: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
                for &v in column {
                    let x: f64 = v.into() + 0.0;
                    if x.is_nan() {
                        continue;
                    }
                    match fp.categories.binary_search_by(|c| c.total_cmp(&x)) {
                        Ok(k) => counts[k] += 1,
                        // Keyed by bit pattern so the map orders by value for non-negative codes and stays exact.
                        Err(_) => *new.entry(x.to_bits()).or_insert(0) += 1,
                    }
                }
                let mut new: Vec<(f64, u64)> = new.into_iter().map(|(b, c)| (f64::from_bits(b), c)).collect();
                new.sort_by(|a, b| a.0.total_cmp(&b.0));
                (counts, new)
            })
            .collect()
    }))
}

/// Current features from a live window: exact histograms/counts, sorted copies of the samples.
#[must_use]
pub fn current_from_window(
    profile: &Profile,
    state: &WindowState,
    stats: &[Stat],
    binning: Binning,
) -> Vec<CurrentFeature> {
    let need = needs(stats, binning);
    crate::runtime::pool().install(|| {
        profile
            .features
            .par_iter()
            .zip(state.features.par_iter())
            .map(|(fp, fw)| {
                let n = fw.count;
                if fp.categorical {
                    let categories = fw.category_counts(&fp.categories);
                    CurrentFeature {
                        categories,
                        n,
                        nan: fw.nan,
                        ..CurrentFeature::default()
                    }
                } else {
                    let mut sorted = if need.values { fw.sample.clone() } else { Vec::new() };
                    sort_values(&mut sorted);
                    let sampled = need.values && (fw.sample.len() as u64) < n;
                    CurrentFeature {
                        sorted,
                        hist: fw.hist.clone(),
                        n,
                        nan: fw.nan,
                        sampled,
                        ..CurrentFeature::default()
                    }
                }
            })
            .collect()
    })
}

/// One result column: its key and a value per feature.
pub type Column = (String, Vec<f64>);

/// Every requested statistic for every feature, plus the count columns, in parallel across features.
#[must_use]
pub fn compare(profile: &Profile, current: &[CurrentFeature], stats: &[Stat], binning: Binning) -> Vec<Column> {
    let per_feature: Vec<Vec<(f64, f64)>> = crate::runtime::pool().install(|| {
        profile
            .features
            .par_iter()
            .zip(current.par_iter())
            .map(|(fp, cur)| stats.iter().map(|&s| feature_stat(fp, cur, s, binning)).collect())
            .collect()
    });
    let mut out: Vec<Column> = Vec::new();
    for (k, s) in stats.iter().enumerate() {
        if out.iter().any(|(name, _)| name == s.name()) {
            continue;
        }
        out.push((s.name().to_string(), per_feature.iter().map(|v| v[k].0).collect()));
        if s.has_pvalue() {
            out.push((
                format!("{}_pvalue", s.name()),
                per_feature.iter().map(|v| v[k].1).collect(),
            ));
        }
    }
    let col = |f: &dyn Fn(&FeatureProfile, &CurrentFeature) -> f64| -> Vec<f64> {
        profile.features.iter().zip(current).map(|(fp, c)| f(fp, c)).collect()
    };
    out.push(("n_ref".into(), col(&|fp, _| fp.n() as f64)));
    out.push(("n_cur".into(), col(&|_, c| c.n as f64)));
    out.push(("nan_ref".into(), col(&|fp, _| fp.nan_count as f64)));
    out.push(("nan_cur".into(), col(&|_, c| c.nan as f64)));
    out.push(("sampled".into(), col(&|_, c| f64::from(u8::from(c.sampled)))));
    out
}

/// Reference and current proportions on the shared bins of one feature.
fn binned(fp: &FeatureProfile, cur: &CurrentFeature, binning: Binning) -> (Vec<f64>, Vec<f64>) {
    let (n, m) = (fp.n(), cur.n);
    if fp.categorical {
        let (_, r, c) = union_counts((&fp.categories, &fp.hist), (&cur.categories.0, &cur.categories.1));
        return (proportions(&r, n), proportions(&c, m));
    }
    match binning {
        Binning::Quantile => (proportions(&fp.hist, n), proportions(&cur.hist, m)),
        Binning::Evidently if fp.distinct > 20 => {
            let edges = sturges_edges(&fp.sorted, &cur.sorted);
            let m_sample = cur.sorted.len() as u64;
            (
                proportions(&histogram_closed(&edges, &fp.sorted), n),
                proportions(&histogram_closed(&edges, &cur.sorted), m_sample),
            )
        }
        Binning::Evidently => {
            let rv = value_counts_sorted(&fp.sorted);
            let cv = value_counts_sorted(&cur.sorted);
            let (_, r, c) = union_counts((&rv.0, &rv.1), (&cv.0, &cv.1));
            (proportions(&r, n), proportions(&c, cur.sorted.len() as u64))
        }
    }
}

/// One statistic for one feature: (value, p-value), NaN where it does not apply or a side is empty.
#[must_use]
pub fn feature_stat(fp: &FeatureProfile, cur: &CurrentFeature, stat: Stat, binning: Binning) -> (f64, f64) {
    const NONE: (f64, f64) = (f64::NAN, f64::NAN);
    let applies = if fp.categorical {
        stat.categorical()
    } else {
        stat.numeric()
    };
    if !applies || fp.n() == 0 || cur.n == 0 {
        return NONE;
    }
    let evid = binning == Binning::Evidently;
    match stat {
        Stat::Ks => ks_2samp(&fp.sorted, &cur.sorted),
        Stat::Wasserstein => (wasserstein(&fp.sorted, &cur.sorted), f64::NAN),
        Stat::WassersteinNorm => (wasserstein_norm(wasserstein(&fp.sorted, &cur.sorted), fp.std), f64::NAN),
        Stat::CramerVonMises => cramervonmises_2samp(&fp.sorted, &cur.sorted),
        Stat::Anderson => anderson_ksamp(&fp.sorted, &cur.sorted),
        Stat::Psi => {
            let (r, c) = binned(fp, cur, binning);
            let v = if evid {
                psi_evidently(&evidently_fill(&r), &evidently_fill(&c))
            } else {
                psi(&floored(&r, PROPORTION_FLOOR), &floored(&c, PROPORTION_FLOOR))
            };
            (v, f64::NAN)
        }
        Stat::JensenShannon => {
            let (r, c) = binned(fp, cur, binning);
            (jensenshannon(&r, &c, if evid { None } else { Some(2.0) }), f64::NAN)
        }
        Stat::Hellinger => {
            let (r, c) = binned(fp, cur, binning);
            (hellinger(&r, &c), f64::NAN)
        }
        Stat::Kl => {
            let (r, c) = binned(fp, cur, binning);
            let v = if evid {
                kl_divergence(&evidently_fill(&r), &evidently_fill(&c))
            } else {
                kl_divergence(&floored(&r, PROPORTION_FLOOR), &floored(&c, PROPORTION_FLOOR))
            };
            (v, f64::NAN)
        }
        Stat::Chi2 | Stat::Chi2Gof | Stat::FisherExact => {
            let (_, r, c) = union_counts((&fp.categories, &fp.hist), (&cur.categories.0, &cur.categories.1));
            match stat {
                Stat::Chi2 => chi2_contingency(&r, &c),
                Stat::Chi2Gof => chi2_gof(&r, &c),
                _ => match r.len() {
                    // [[ones_cur, zeros_cur], [ones_ref, zeros_ref]]; "ones" is the larger code.
                    1 => fisher_exact(c[0], 0, r[0], 0),
                    2 => fisher_exact(c[1], c[0], r[1], r[0]),
                    _ => NONE,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numpy::ndarray::array;

    #[test]
    fn compare_array_against_profile() {
        let reference = array![[1.0, 0.0], [2.0, 1.0], [3.0, 1.0], [4.0, 0.0], [5.0, 1.0]];
        let p = Profile::build(&reference.view(), vec!["x".into(), "c".into()], vec![false, true], 4)
            .expect("test input is valid");
        let cur = array![[1.0, 0.0], [2.0, 1.0], [f64::NAN, 2.0]];
        let stats = [Stat::Ks, Stat::Psi, Stat::Chi2, Stat::FisherExact];
        let cf = current_from_array(&p, &cur.view(), &stats, Binning::Quantile).expect("test input is valid");
        let out = compare(&p, &cf, &stats, Binning::Quantile);
        let get = |k: &str| {
            out.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .expect("test input is valid")
        };
        assert_eq!(get("n_ref"), vec![5.0, 5.0]);
        assert_eq!(get("n_cur"), vec![2.0, 3.0]);
        assert_eq!(get("nan_cur"), vec![1.0, 0.0]);
        assert!(get("ks")[0] > 0.5 && get("ks")[1].is_nan());
        assert!(get("chi2")[0].is_nan() && get("chi2_pvalue")[1] > 0.0);
        // three categories in the union: Fisher does not apply
        assert!(get("fisher_exact_pvalue")[1].is_nan());
        assert!(get("psi")[0] > 0.0);
        assert!(current_from_array(&p, &array![[1.0]].view(), &stats, Binning::Quantile).is_err());
    }
}
