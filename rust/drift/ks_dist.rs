//! Null distributions of the two-sample KS statistic, ported from scipy (`_stats_py.py`, `_ksstats.py`, cephes).
//!
//! `ks_2samp_pvalue` reproduces `scipy.stats.ks_2samp(..., method="auto")`: the exact lattice-path
//! probability when `max(n1, n2) <= 10000`, else `kstwo.sf(D, round(n1 n2 / (n1 + n2)))` with scipy's
//! choice among Ruben-Gambino, Durbin matrix (MTW), Pomeranz, Pelz-Good and the one-sided Smirnov sum.

use super::kolmogorov::kolmogn_sf;

const MAX_AUTO_N: u64 = 10_000;
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Statistic and p-value of the two-sided two-sample KS test as scipy reports them.
///
/// On the exact path scipy rounds `d` to the lattice `h / lcm(n1, n2)`; the returned statistic does too.
#[must_use]
pub fn ks_2samp_pvalue(n1: u64, n2: u64, d: f64) -> (f64, f64) {
    if n1 == 0 || n2 == 0 || d.is_nan() {
        return (f64::NAN, f64::NAN);
    }
    let mut d = d;
    if n1.max(n2) <= MAX_AUTO_N {
        let g = gcd(n1, n2);
        let lcm = (n1 / g) * n2;
        let h = (d * lcm as f64).round_ties_even();
        d = h / lcm as f64;
        if h == 0.0 {
            return (d, 1.0);
        }
        let h = h as i64;
        let prob = if n1 == n2 {
            prob_outside_square(n1 as i64, h)
        } else {
            outer_prob_inside(n1 as i64, n2 as i64, g as i64, h)
        };
        if (0.0..=1.0).contains(&prob) {
            return (d, prob);
        }
        // scipy warns and falls through to the asymptotic distribution with the rounded `d`.
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    (d, kolmogn_sf(en.round_ties_even(), d).clamp(0.0, 1.0))
}

/// `_compute_prob_outside_square(n, h)`: Pr(D_{n,n} >= h/n), Horner-like alternating sum.
#[must_use]
pub fn prob_outside_square(n: i64, h: i64) -> f64 {
    let mut p = 0.0;
    let mut k = n / h;
    while k >= 0 {
        let mut p1 = 1.0;
        for j in 0..h {
            p1 = (n - k * h - j) as f64 * p1 / (n + k * h + j + 1) as f64;
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// `_compute_outer_prob_inside_method(m, n, g, h)`: 1 - the share of lattice paths staying strictly inside
/// `|x/m - y/n| < h / lcm` (Hodges' inside method with Viehmann's 1-p recursion). NaN on an index fault.
#[must_use]
pub fn outer_prob_inside(m: i64, n: i64, g: i64, h: i64) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let mg = m / g;
    let ng = n / g;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ((h as f64 / mg as f64).ceil() as i64).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1).max(1) as usize;
    let mut a = vec![1.0_f64; len_a];
    for v in a.iter_mut().take(maxj.max(0) as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = ((((ng * i - h) as f64) / mg as f64).floor() as i64 + 1).max(0);
        minj = minj.min(n);
        maxj = ((((ng * i + h) as f64) / mg as f64).ceil() as i64).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let Some(&prev) = a.get((jj + minj - lastminj) as usize) else {
                return f64::NAN;
            };
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            match a.get_mut(jj as usize) {
                Some(slot) => *slot = val,
                None => return f64::NAN,
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let lo = ((maxj - minj) as usize).min(a.len());
            let hi = ((maxj - minj + (lastlen - curlen)) as usize).min(a.len());
            for v in &mut a[lo..hi] {
                *v = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_and_inside_methods_agree() {
        // Same-size samples: both lattice algorithms give Pr(D >= h/n).
        for (n, h) in [(5, 2), (10, 3), (40, 9)] {
            let a = prob_outside_square(n, h);
            let b = outer_prob_inside(n, n, n, h);
            assert!((a - b).abs() < 1e-12, "n={n} h={h}: {a} vs {b}");
        }
    }

    #[test]
    fn exact_small_known_value() {
        // scipy.stats.ks_2samp([1, 2, 3], [4, 5, 6]).pvalue == 0.1
        let (d, p) = ks_2samp_pvalue(3, 3, 1.0);
        assert_eq!(d, 1.0);
        assert!((p - 0.1).abs() < 1e-12);
        assert_eq!(ks_2samp_pvalue(4, 7, 0.0), (0.0, 1.0));
    }
}
