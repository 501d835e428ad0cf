//! Population Stability Index over binned proportions.

/// Floor every proportion at `floor` (no renormalisation), as the quantile-binned PSI and KL use.
#[must_use]
pub fn floored(p: &[f64], floor: f64) -> Vec<f64> {
    p.iter().map(|&x| x.max(floor)).collect()
}

/// `sum (cur - ref) * ln(cur / ref)` over already floored (or filled) proportions.
#[must_use]
pub fn psi(p_ref: &[f64], p_cur: &[f64]) -> f64 {
    p_ref.iter().zip(p_cur).map(|(&r, &c)| (c - r) * (c / r).ln()).sum()
}

/// Evidently's `feel_zeroes`: zeros become `min_nonzero / 1e6` when `min_nonzero <= 1e-4`, else `1e-4`.
#[must_use]
pub fn evidently_fill(p: &[f64]) -> Vec<f64> {
    let min_nonzero = p.iter().copied().filter(|&x| x != 0.0).fold(f64::INFINITY, f64::min);
    let fill = if min_nonzero <= 1e-4 { min_nonzero / 1e6 } else { 1e-4 };
    p.iter().map(|&x| if x == 0.0 { fill } else { x }).collect()
}

/// Evidently's PSI: `sum (ref - cur) * ln(ref / cur)` (the same value as [`psi`] up to rounding).
#[must_use]
pub fn psi_evidently(p_ref: &[f64], p_cur: &[f64]) -> f64 {
    let terms: Vec<f64> = p_ref.iter().zip(p_cur).map(|(&r, &c)| (r - c) * (r / c).ln()).collect();
    super::wasserstein::pairwise_sum(&terms)
}

/// Proportions `counts / total`.
#[must_use]
pub fn proportions(counts: &[u64], total: u64) -> Vec<f64> {
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_identical_is_zero_and_symmetric() {
        let p = [0.2, 0.3, 0.5];
        assert_eq!(psi(&p, &p), 0.0);
        let q = [0.3, 0.3, 0.4];
        assert!((psi(&p, &q) - psi(&q, &p)).abs() < 1e-15);
        // (0.1) ln(1.5) + 0 + (-0.1) ln(0.8)
        let want = 0.1 * 1.5_f64.ln() - 0.1 * 0.8_f64.ln();
        assert!((psi(&p, &q) - want).abs() < 1e-15);
    }

    #[test]
    fn floors_and_fills() {
        assert_eq!(floored(&[0.0, 0.5], 1e-4), vec![1e-4, 0.5]);
        assert_eq!(evidently_fill(&[0.0, 0.5, 0.5]), vec![1e-4, 0.5, 0.5]);
        assert_eq!(evidently_fill(&[0.0, 1e-5, 1.0]), vec![1e-5 / 1e6, 1e-5, 1.0]);
        assert_eq!(proportions(&[1, 3], 4), vec![0.25, 0.75]);
    }
}
