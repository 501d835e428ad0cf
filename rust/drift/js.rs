//! Jensen-Shannon distance between two discrete distributions (`scipy.spatial.distance.jensenshannon`).

/// `x ln(x / y)` with scipy's `rel_entr` conventions (0 when x == 0 and y >= 0, inf when y == 0 < x).
#[must_use]
pub fn rel_entr(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// JS distance: both inputs normalised to sum 1, `sqrt((KL(p||m) + KL(q||m)) / ln(base) / 2)`.
///
/// `base = None` is the natural logarithm (Evidently's call), `Some(2.0)` bounds the distance by 1.
#[must_use]
pub fn jensenshannon(p: &[f64], q: &[f64], base: Option<f64>) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    let (mut left, mut right) = (0.0, 0.0);
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = f64::midpoint(a, b);
        left += rel_entr(a, m);
        right += rel_entr(b, m);
    }
    let mut js = left + right;
    if let Some(b) = base {
        js /= b.ln();
    }
    (js / 2.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(jensenshannon(&[0.5, 0.5], &[0.5, 0.5], Some(2.0)), 0.0);
        // disjoint supports: distance 1 in base 2
        assert!((jensenshannon(&[1.0, 0.0], &[0.0, 1.0], Some(2.0)) - 1.0).abs() < 1e-15);
        // scipy: jensenshannon([1, 0], [0, 1]) == sqrt(ln 2)
        assert!((jensenshannon(&[1.0, 0.0], &[0.0, 1.0], None) - 2_f64.ln().sqrt()).abs() < 1e-15);
        // unnormalised input is normalised first
        assert!(jensenshannon(&[2.0, 2.0], &[0.5, 0.5], Some(2.0)).abs() < 1e-15);
    }
}
