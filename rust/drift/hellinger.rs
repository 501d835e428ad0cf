//! Hellinger distance between two discrete distributions.

/// `sqrt(sum (sqrt(p) - sqrt(q))^2) / sqrt(2)` on unfloored proportions; in [0, 1].
#[must_use]
pub fn hellinger(p: &[f64], q: &[f64]) -> f64 {
    let s: f64 = p.iter().zip(q).map(|(&a, &b)| (a.sqrt() - b.sqrt()).powi(2)).sum();
    s.sqrt() / std::f64::consts::SQRT_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(hellinger(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        assert!((hellinger(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-15);
    }
}
