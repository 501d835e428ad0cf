//! Fisher's exact test (two-sided) on a 2 x 2 table, as `scipy.stats.fisher_exact` computes it.
//!
//! scipy sums the hypergeometric pmf of every table no more likely than the observed one: on the observed side of
//! the mode, `x` at or beyond the observed count; on the other side, from the first `x` whose pmf is at most the
//! observed pmf (with a tiny relative tolerance). An absolute pmf from log-gamma carries an error of about
//! `ulp(ln_gamma(N))`, 1e-8 relative at a million rows per side, which every term of a tail inherits. So the pmf is
//! taken relative to the mode instead, by the exact term ratios walked outward from it, and the p-value is the tails'
//! share of the whole sum: the log-gamma normaliser cancels, and what is left is the ratios' rounding (~1e-13).

use super::special::ln_binom;

/// Relative tolerance for "as likely as the observed table": scipy uses 1e-14 on Boost's pmf; the walked ratios carry
/// ~1e-13 relative error over long walks, so ties (symmetric tables) need a slightly looser, still tiny, band.
const REL_TIE: f64 = 1e-11;

/// Below `e^-700` relative to the mode the observed table's terms underflow in the walk; its p-value is then tiny
/// and log-space tails are exact enough in absolute terms.
const LN_WALK_FLOOR: f64 = -700.0;

struct Hypergeom {
    total: u64,
    good: u64,
    draws: u64,
    lo: u64,
    hi: u64,
}

/// Neumaier's compensated sum: a tail is up to millions of positive terms.
#[derive(Default, Clone, Copy)]
struct Sum {
    sum: f64,
    carry: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.carry += (self.sum - t) + x;
        } else {
            self.carry += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.carry
    }
}

/// One side of the mode walked outward: the terms nearer the mode than the tail, and the tail.
struct Side {
    near: Sum,
    tail: Sum,
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

    /// pmf(observed) / pmf(mode), by the ratios from the mode.
    fn relative(&self, mode: u64, observed: u64) -> f64 {
        let mut term = 1.0;
        let mut x = mode;
        while x > observed {
            term *= self.ratio_down(x);
            x -= 1;
        }
        while x < observed {
            term *= self.ratio_up(x);
            x += 1;
        }
        term
    }

    /// Walk from the mode (term 1, not counted) away from it, down or up. A term joins the tail once `in_tail` says
    /// so for its position and relative pmf; the walk ends when what is left (below a geometric series of
    /// the falling ratio) cannot reach 1e-17 of the tail.
    fn walk(&self, mode: u64, up: bool, in_tail: impl Fn(u64, f64) -> bool) -> Side {
        let mut side = Side {
            near: Sum::default(),
            tail: Sum::default(),
        };
        let mut term = 1.0;
        let mut x = mode;
        let mut tailing = false;
        loop {
            if (up && x >= self.hi) || (!up && x <= self.lo) {
                break;
            }
            let r = if up { self.ratio_up(x) } else { self.ratio_down(x) };
            term *= r;
            x = if up { x + 1 } else { x - 1 };
            tailing = tailing || in_tail(x, term);
            if tailing {
                side.tail.add(term);
            } else {
                side.near.add(term);
            }
            // The near terms all count (the tail starts before they underflow: the observed pmf is above e^-700).
            if term == 0.0 || (tailing && r < 1.0 && term * r / (1.0 - r) < 1e-17 * side.tail.value()) {
                break;
            }
        }
        side
    }

    /// Sum of pmf over `from..=lo` going down, from a point at or below the mode (log-space start).
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

    /// Sum of pmf over `from..=hi` going up, from a point at or above the mode (log-space start).
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
    if a == mode {
        return (odds, 1.0);
    }
    let p = if hg.ln_pmf(a) - hg.ln_pmf(mode) < LN_WALK_FLOOR {
        log_space(&hg, a, mode)
    } else {
        let observed = hg.relative(mode, a);
        if (1.0 - observed).abs() <= REL_TIE {
            return (odds, 1.0);
        }
        let threshold = observed * (1.0 + REL_TIE);
        let (mine, other) = if a < mode {
            (
                hg.walk(mode, false, |x, _| x <= a),
                hg.walk(mode, true, |_, t| t <= threshold),
            )
        } else {
            (
                hg.walk(mode, true, |x, _| x >= a),
                hg.walk(mode, false, |_, t| t <= threshold),
            )
        };
        let tails = mine.tail.value() + other.tail.value();
        tails / (1.0 + mine.near.value() + other.near.value() + tails)
    };
    (odds, p.min(1.0))
}

/// The p-value of a table far out in a tail (pmf below `e^-700` of the mode's): tails summed from log-space pmf.
fn log_space(hg: &Hypergeom, a: u64, mode: u64) -> f64 {
    let ln_thr = hg.ln_pmf(a) + REL_TIE.ln_1p();
    if a < mode {
        let plower = hg.tail_down(a);
        if hg.ln_pmf(hg.hi) > ln_thr {
            return plower;
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
            return pupper;
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
    }
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

    #[test]
    fn a_million_rows_per_side_is_exact_to_1e_13() {
        // exact (mpmath, 40 digits): 0.81110396513596011653; scipy 1.17 gives 0.8111039654100305 (Boost cdf, 3e-10 off)
        let (_, p) = fisher_exact(500_000, 500_000, 500_170, 499_830);
        assert!((p - 0.811_103_965_135_960_1).abs() < 1e-13, "{p}");
    }

    #[test]
    fn far_tails_take_the_log_space_path_and_stay_tiny() {
        let (_, p) = fisher_exact(1_000_000, 0, 0, 1_000_000);
        assert!((0.0..1e-300).contains(&p), "{p}");
        let (_, p) = fisher_exact(600_000, 400_000, 400_000, 600_000);
        assert!((0.0..1e-300).contains(&p), "{p}");
    }
}
