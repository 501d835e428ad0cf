//! Two-sample Kolmogorov-Smirnov statistic by one merge pass over two sorted samples.

use super::ks_dist::ks_2samp_pvalue;

/// `D = max |F_ref - F_cur|` over the pooled values (ties counted with `searchsorted(side="right")`).
///
/// Both slices must be sorted ascending and NaN-free. Returns NaN when either is empty.
#[must_use]
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0, 0);
    let (mut max_d, mut min_d) = (f64::NEG_INFINITY, f64::INFINITY);
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let d = i as f64 / n - j as f64 / m;
        max_d = max_d.max(d);
        min_d = min_d.min(d);
    }
    let min_s = (-min_d).clamp(0.0, 1.0);
    if min_s > max_d {
        min_s
    } else {
        max_d
    }
}

/// `scipy.stats.ks_2samp(a, b)` (two-sided, method "auto"): (statistic, p-value) for sorted samples.
#[must_use]
pub fn ks_2samp(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d = ks_statistic(a, b);
    if d.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    ks_2samp_pvalue(a.len() as u64, b.len() as u64, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_known_values() {
        assert_eq!(ks_statistic(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 1.0);
        assert_eq!(ks_statistic(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        // ties across samples: F_a(1) = 1/2, F_b(1) = 1 -> 0.5
        assert_eq!(ks_statistic(&[1.0, 2.0], &[1.0, 1.0]), 0.5);
        assert!(ks_statistic(&[], &[1.0]).is_nan());
    }

    #[test]
    fn constant_columns() {
        assert_eq!(ks_2samp(&[3.0; 5], &[3.0; 7]), (0.0, 1.0));
        assert_eq!(ks_statistic(&[3.0; 5], &[4.0; 7]), 1.0);
    }
}
