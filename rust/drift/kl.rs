//! Kullback-Leibler divergence between binned proportions (`scipy.stats.entropy(p, q)`).

use super::js::rel_entr;

/// `sum p ln(p / q)` after normalising both to sum 1 (natural log).
#[must_use]
pub fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    p.iter().zip(q).map(|(&a, &b)| rel_entr(a / sp, b / sq)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(kl_divergence(&[0.3, 0.7], &[0.3, 0.7]), 0.0);
        let want = 0.5 * (0.5_f64 / 0.25).ln() + 0.5 * (0.5_f64 / 0.75).ln();
        assert!((kl_divergence(&[1.0, 1.0], &[0.25, 0.75]) - want).abs() < 1e-15);
        assert_eq!(kl_divergence(&[0.5, 0.5], &[1.0, 0.0]), f64::INFINITY);
    }
}
