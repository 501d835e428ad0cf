//! Two-sample Kolmogorov-Smirnov statistic by one merge pass over two sorted samples.

use super::ks_dist::ks_2samp_pvalue;

/// Sides of 2^31 values or more would overflow the i64 CDF numerator (n m); such a side is 16 GiB.
pub const MAX_SIDE: usize = 1 << 31;

/// `D = max |F_ref - F_cur|` over the pooled values (ties counted with `searchsorted(side="right")`).
///
/// Both slices must be sorted ascending and NaN-free. Returns NaN when either is empty.
#[must_use]
pub fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let (n, m) = (a.len(), b.len());
    if n.max(m) >= MAX_SIDE {
        return f64::NAN;
    }
    let (mut i, mut j) = (0, 0);
    // F_a - F_b = (i m - j n) / (n m): track the integer numerator (no division in the loop) and divide
    // once; the result is the correctly rounded quotient, within an ulp of scipy's i/n - j/m.
    let (mi, ni) = (m as i64, n as i64);
    let (mut diff, mut max_d, mut min_d) = (0_i64, 0_i64, 0_i64);
    // One pooled element per step (few unpredictable branches); the CDF difference only counts after
    // the last of a run of equal values, which is what searchsorted(side="right") sees.
    while i < n || j < m {
        let x = a.get(i).copied().unwrap_or(f64::INFINITY);
        let y = b.get(j).copied().unwrap_or(f64::INFINITY);
        let take_a = i < n && (j >= m || x <= y);
        let v = if take_a { x } else { y };
        i += usize::from(take_a);
        j += usize::from(!take_a);
        diff += if take_a { mi } else { -ni };
        let nx = a.get(i).copied().unwrap_or(f64::INFINITY);
        let ny = b.get(j).copied().unwrap_or(f64::INFINITY);
        let run_ends = (i == n && j == m) || nx.min(ny) != v;
        max_d = if run_ends { max_d.max(diff) } else { max_d };
        min_d = if run_ends { min_d.min(diff) } else { min_d };
    }
    let scale = (n as f64) * (m as f64);
    let (max_s, min_s) = (max_d as f64 / scale, ((-min_d) as f64 / scale).clamp(0.0, 1.0));
    if min_s > max_s {
        min_s
    } else {
        max_s
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
