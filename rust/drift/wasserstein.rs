//! First Wasserstein distance between two empirical distributions (`scipy.stats.wasserstein_distance`).

/// Area between the two empirical CDFs, by one merge pass over two sorted, NaN-free samples.
///
/// Follows scipy's `_cdf_distance(1, u, v)`: sum over consecutive pooled values of
/// `|F_u - F_v| * (z_{k+1} - z_k)`, CDFs evaluated with `searchsorted(side="right")`.
#[must_use]
pub fn wasserstein(u: &[f64], v: &[f64]) -> f64 {
    if u.is_empty() || v.is_empty() {
        return f64::NAN;
    }
    let (n, m) = (u.len() as f64, v.len() as f64);
    let (mut i, mut j) = (0, 0);
    let mut terms: Vec<f64> = Vec::with_capacity(u.len() + v.len());
    // Walk the pooled sorted values one element at a time; equal neighbours contribute a zero delta.
    let mut prev: Option<f64> = None;
    let (mut ci, mut cj) = (0_usize, 0_usize);
    while i < u.len() || j < v.len() {
        let take_u = match (u.get(i), v.get(j)) {
            (Some(x), Some(y)) => x <= y,
            (Some(_), None) => true,
            _ => false,
        };
        let z = if take_u { u[i] } else { v[j] };
        if let Some(p) = prev {
            // CDFs at the previous pooled value p.
            while ci < u.len() && u[ci] <= p {
                ci += 1;
            }
            while cj < v.len() && v[cj] <= p {
                cj += 1;
            }
            terms.push((ci as f64 / n - cj as f64 / m).abs() * (z - p));
        }
        prev = Some(z);
        if take_u {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairwise_sum(&terms)
}

/// numpy's pairwise summation (blocks of 128 with 8 accumulators), so long sums round as `np.sum` does.
#[must_use]
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0_f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for k in 0..8 {
                r[k] += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.std(x)` (ddof 0) with numpy's two-pass formula.
#[must_use]
pub fn std_ddof0(x: &[f64]) -> f64 {
    if x.is_empty() {
        return f64::NAN;
    }
    let n = x.len() as f64;
    let mean = pairwise_sum(x) / n;
    let sq: Vec<f64> = x.iter().map(|&v| (v - mean) * (v - mean)).collect();
    (pairwise_sum(&sq) / n).sqrt()
}

/// Evidently's normed Wasserstein: `W1 / max(std(ref), 0.001)`.
#[must_use]
pub fn wasserstein_norm(w1: f64, ref_std: f64) -> f64 {
    // Python's max(nan, 0.001) is nan (an infinite reference value makes np.std nan); f64::max would drop it.
    if ref_std.is_nan() {
        return f64::NAN;
    }
    w1 / ref_std.max(0.001)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert!((wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]) - 5.0).abs() < 1e-12);
        // scipy.stats.wasserstein_distance([0, 1], [0, 1, 1, 1]) == 0.25
        assert!((wasserstein(&[0.0, 1.0], &[0.0, 1.0, 1.0, 1.0]) - 0.25).abs() < 1e-12);
        assert_eq!(wasserstein(&[2.0; 3], &[2.0; 4]), 0.0);
        assert!(wasserstein(&[], &[1.0]).is_nan());
    }

    #[test]
    fn pairwise_matches_plain_sum_on_integers() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(pairwise_sum(&v), 499_500.0);
        assert_eq!(std_ddof0(&[1.0, 3.0]), 1.0);
        assert_eq!(wasserstein_norm(0.5, 0.0), 500.0);
    }
}
