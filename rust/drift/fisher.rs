//! Fisher's exact test (two-sided) on a 2 x 2 table, as `scipy.stats.fisher_exact` computes it.

use super::special::ln_binom;

/// Relative tolerance for "as extreme as the observed table". scipy uses 1e-14 on Boost's pmf; our
/// log-gamma pmf carries ~1e-13 relative error, so ties (symmetric tables) need a looser, still tiny, band.
const REL_TIE: f64 = 1e-7;

struct Hypergeom {
    total: u64,
    good: u64,
    draws: u64,
    lo: u64,
    hi: u64,
}

impl Hypergeom {
    fn ln_pmf(&self, x: u64) -> f64 {
        ln_binom(self.good as f64, x as f64) + ln_binom((self.total - self.good) as f64, (self.draws - x) as f64)
            - ln_binom(self.total as f64, self.draws as f64)
    }

    /// pmf(x - 1) / pmf(x).
    fn ratio_down(&self, x: u64) -> f64 {
        let (x, g, t, d) = (x as f64, self.good as f64, self.total as f64, self.draws as f64);
        x * (t - g - d + x) / ((g - x + 1.0) * (d - x + 1.0))
    }

    /// pmf(x + 1) / pmf(x).
    fn ratio_up(&self, x: u64) -> f64 {
        let (x, g, t, d) = (x as f64, self.good as f64, self.total as f64, self.draws as f64);
        (g - x) * (d - x) / ((x + 1.0) * (t - g - d + x + 1.0))
    }

    /// Sum of pmf over `from..=lo` going down, from a point at or below the mode.
    fn tail_down(&self, from: u64) -> f64 {
        let mut term = self.ln_pmf(from).exp();
        let mut acc = term;
        let mut x = from;
        while x > self.lo {
            let r = self.ratio_down(x);
            term *= r;
            acc += term;
            x -= 1;
            if term == 0.0 || (r < 1.0 && term * r / (1.0 - r) < 1e-17 * acc) {
                break;
            }
        }
        acc
    }

    /// Sum of pmf over `from..=hi` going up, from a point at or above the mode.
    fn tail_up(&self, from: u64) -> f64 {
        let mut term = self.ln_pmf(from).exp();
        let mut acc = term;
        let mut x = from;
        while x < self.hi {
            let r = self.ratio_up(x);
            term *= r;
            acc += term;
            x += 1;
            if term == 0.0 || (r < 1.0 && term * r / (1.0 - r) < 1e-17 * acc) {
                break;
            }
        }
        acc
    }
}

/// Two-sided Fisher test on `[[a, b], [c, d]]`: (odds ratio, p-value).
#[must_use]
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> (f64, f64) {
    if a + b == 0 || c + d == 0 || a + c == 0 || b + d == 0 {
        return (f64::NAN, 1.0);
    }
    let odds = if c > 0 && b > 0 {
        (a * d) as f64 / (c * b) as f64
    } else {
        f64::INFINITY
    };
    let (n1, n2, n) = (a + b, c + d, a + c);
    let hg = Hypergeom {
        total: n1 + n2,
        good: n1,
        draws: n,
        lo: n.saturating_sub(n2),
        hi: n.min(n1),
    };
    let mode = ((n + 1) as f64 * (n1 + 1) as f64 / (n1 + n2 + 2) as f64) as u64;
    let mode = mode.clamp(hg.lo, hg.hi);
    let ln_exact = hg.ln_pmf(a);
    let ln_mode = hg.ln_pmf(mode);
    if (ln_exact - ln_mode).abs() <= REL_TIE {
        return (odds, 1.0);
    }
    let ln_thr = ln_exact + REL_TIE.ln_1p();
    let p = if a < mode {
        let plower = hg.tail_down(a);
        if hg.ln_pmf(hg.hi) > ln_thr {
            return (odds, plower.min(1.0));
        }
        // smallest x in [mode, hi] with pmf(x) <= threshold (pmf decreases there)
        let (mut l, mut h) = (mode, hg.hi);
        while l < h {
            let mid = l + (h - l) / 2;
            if hg.ln_pmf(mid) <= ln_thr {
                h = mid;
            } else {
                l = mid + 1;
            }
        }
        plower + hg.tail_up(l)
    } else {
        let pupper = hg.tail_up(a);
        if hg.ln_pmf(hg.lo) > ln_thr {
            return (odds, pupper.min(1.0));
        }
        // largest x in [lo, mode] with pmf(x) <= threshold (pmf increases there)
        let (mut l, mut h) = (hg.lo, mode);
        while l < h {
            let mid = l + (h - l).div_ceil(2);
            if hg.ln_pmf(mid) <= ln_thr {
                l = mid;
            } else {
                h = mid - 1;
            }
        }
        pupper + hg.tail_down(l)
    };
    (odds, p.min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // scipy.stats.fisher_exact([[8, 2], [1, 5]]) -> (20.0, 0.03496503496503495)
        let (o, p) = fisher_exact(8, 2, 1, 5);
        assert_eq!(o, 20.0);
        assert!((p - 0.034_965_034_965_034_95).abs() < 1e-12, "{p}");
        // symmetric table: p = 1
        assert_eq!(fisher_exact(3, 3, 3, 3).1, 1.0);
        let (o, p) = fisher_exact(0, 0, 3, 3);
        assert!(o.is_nan());
        assert_eq!(p, 1.0);
    }
}
