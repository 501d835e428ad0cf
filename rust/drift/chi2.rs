//! Chi-square tests on category counts: homogeneity (`chi2_contingency`) and goodness of fit (`chisquare`).

use super::special::chi2_sf;
use super::wasserstein::pairwise_sum;

/// `scipy.stats.chi2_contingency([ref, cur])` on a 2 x K table: (statistic, p-value).
///
/// Yates' correction applies only when dof == 1; dof == 0 gives (0, 1). Every column must have a
/// non-zero total (categories are the union of both sides) and both rows must be non-empty.
#[must_use]
pub fn chi2_contingency(ref_counts: &[u64], cur_counts: &[u64]) -> (f64, f64) {
    let k = ref_counts.len();
    let (rs, cs): (u64, u64) = (ref_counts.iter().sum(), cur_counts.iter().sum());
    if k == 0 || rs == 0 || cs == 0 {
        return (f64::NAN, f64::NAN);
    }
    let total = (rs + cs) as f64;
    let dof = k - 1;
    if dof == 0 {
        return (0.0, 1.0);
    }
    let mut terms = Vec::with_capacity(2 * k);
    for (row, row_sum) in [(ref_counts, rs), (cur_counts, cs)] {
        for (j, &o) in row.iter().enumerate() {
            let col = ref_counts[j] + cur_counts[j];
            let e = (row_sum as f64 * col as f64) / total;
            let mut o = o as f64;
            if dof == 1 {
                let diff = e - o;
                o += diff.abs().min(0.5) * diff.signum() * f64::from(u8::from(diff != 0.0));
            }
            terms.push((o - e) * (o - e) / e);
        }
    }
    let stat = pairwise_sum(&terms);
    (stat, chi2_sf(stat, dof as f64))
}

/// `scipy.stats.chisquare(cur, ref * m / n)`: (statistic, p-value); a category absent from the reference
/// gives an infinite statistic and p = 0.
#[must_use]
pub fn chi2_gof(ref_counts: &[u64], cur_counts: &[u64]) -> (f64, f64) {
    let k = ref_counts.len();
    let (n, m): (u64, u64) = (ref_counts.iter().sum(), cur_counts.iter().sum());
    if k == 0 || n == 0 || m == 0 {
        return (f64::NAN, f64::NAN);
    }
    let terms: Vec<f64> = ref_counts
        .iter()
        .zip(cur_counts)
        .map(|(&r, &c)| {
            let e = (r as f64 * m as f64) / n as f64;
            let d = c as f64 - e;
            d * d / e
        })
        .collect();
    let stat = pairwise_sum(&terms);
    (stat, chi2_sf(stat, (k - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contingency_known_values() {
        // scipy.stats.chi2_contingency([[10, 20, 30], [20, 20, 20]]) -> (5.333333333333333, 0.0694834512228015)
        let (s, p) = chi2_contingency(&[10, 20, 30], &[20, 20, 20]);
        assert!((s - 5.333_333_333_333_333).abs() < 1e-12);
        assert!((p - (-s / 2.0).exp()).abs() < 1e-12); // chi2(2).sf(x) = exp(-x/2)
        assert_eq!(chi2_contingency(&[5], &[7]), (0.0, 1.0));
        assert!(chi2_contingency(&[0, 0], &[1, 2]).0.is_nan());
    }

    #[test]
    fn yates_applies_for_two_categories() {
        // [[10, 20], [20, 10]]: expected 15 everywhere, |diff| 5 -> 4.5 after Yates: 4 * 4.5^2 / 15 = 5.4
        let (s, _) = chi2_contingency(&[10, 20], &[20, 10]);
        assert!((s - 5.4).abs() < 1e-12);
    }

    #[test]
    fn gof_new_category_is_infinite() {
        let (s, p) = chi2_gof(&[10, 0], &[5, 5]);
        assert_eq!(s, f64::INFINITY);
        assert_eq!(p, 0.0);
        let (s, p) = chi2_gof(&[10, 10], &[10, 10]);
        assert_eq!((s, p), (0.0, 1.0));
    }
}
