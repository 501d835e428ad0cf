//! Two-sample Cramér-von Mises test (`scipy.stats.cramervonmises_2samp`, method "auto").

use super::special::{kve, ln_gamma, pi_pow_1_5};
use super::wasserstein::pairwise_sum;

/// (statistic T, p-value) for two sorted, NaN-free samples; NaN when either has fewer than 2 values.
///
/// Midranks for ties; exact p-value when both sizes are <= 20, else Anderson's normalised limiting law.
#[must_use]
pub fn cramervonmises_2samp(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (nx, ny) = (x.len(), y.len());
    if nx <= 1 || ny <= 1 {
        return (f64::NAN, f64::NAN);
    }
    let u = u_statistic(x, y);
    let k = (nx * ny) as u128;
    let n_all = (nx + ny) as u128;
    let t = u / (k * n_all) as f64 - (4 * k - 1) as f64 / (6 * n_all) as f64;
    let p = if nx.max(ny) > 20 {
        pval_asymptotic(t, n_all, nx as u128, ny as u128, k)
    } else {
        pval_exact(u, nx as u64, ny as u64)
    };
    (t, p)
}

/// `U = nx * sum (r(x_i) - i)^2 + ny * sum (r(y_j) - j)^2` with midranks in the pooled sample.
fn u_statistic(x: &[f64], y: &[f64]) -> f64 {
    let mut tx = Vec::with_capacity(x.len());
    let mut ty = Vec::with_capacity(y.len());
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        let below = i + j;
        let (i0, j0) = (i, j);
        while i < x.len() && x[i] <= v {
            i += 1;
        }
        while j < y.len() && y[j] <= v {
            j += 1;
        }
        let upper = i + j;
        let rank = 0.5 * (upper + below + 1) as f64;
        for ii in i0..i {
            let d = rank - (ii + 1) as f64;
            tx.push(d * d);
        }
        for jj in j0..j {
            let d = rank - (jj + 1) as f64;
            ty.push(d * d);
        }
    }
    x.len() as f64 * pairwise_sum(&tx) + y.len() as f64 * pairwise_sum(&ty)
}

fn pval_asymptotic(t: f64, n_all: u128, nx: u128, ny: u128, k: u128) -> f64 {
    let nf = n_all as f64;
    let et = (1.0 + 1.0 / nf) / 6.0;
    let num = (n_all + 1) as i128 * ((4 * k * n_all) as i128 - (3 * (nx * nx + ny * ny)) as i128 - (2 * k) as i128);
    let vt = num as f64 / (45 * n_all * n_all * 4 * k) as f64;
    let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
    if tn >= 0.003 {
        (1.0 - cdf_cvm_inf(tn)).max(0.0)
    } else {
        1.0
    }
}

/// CDF of the limiting one-sample Cramér-von Mises distribution (Csörgő and Faraway 1996, eq. 1.2).
#[must_use]
pub fn cdf_cvm_inf(x: f64) -> f64 {
    let mut tot = 0.0;
    let mut k = 0.0_f64;
    loop {
        let u = (ln_gamma(k + 0.5) - ln_gamma(k + 1.0)).exp() / (pi_pow_1_5() * x.sqrt());
        let y = 4.0 * k + 1.0;
        let q = y * y / (16.0 * x);
        // exp(-q) * K_{1/4}(q) == exp(-2q) * kve(1/4, q)
        let z = u * y.sqrt() * (-2.0 * q).exp() * kve(0.25, q);
        tot += z;
        if z.abs() < 1e-7 || k > 1000.0 {
            break;
        }
        k += 1.0;
    }
    tot
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn comb(n: u64, k: u64) -> f64 {
    let mut c = 1_u128;
    for i in 0..k.min(n - k) {
        c = c * u128::from(n - i) / u128::from(i + 1);
    }
    c as f64
}

/// Exact p-value by the frequency-table recursion of Xiao, Gordon and Yakovlev (2006), as scipy does it.
fn pval_exact(s: f64, m: u64, n: u64) -> f64 {
    let lcm = m / gcd(m, n) * n;
    let (a, b) = (lcm / m, lcm / n);
    let mn = m * n;
    let zeta = ((lcm * lcm * (m + n)) as f64 * (6.0 * s - (mn * (4 * mn - 1)) as f64) / (6 * mn * mn) as f64).floor();
    let combinations = comb(m + n, m);
    // gs[v]: sorted (value, frequency) table of g_{u,v}; merging sorted runs keeps every step linear.
    let mut gs: Vec<Vec<(u64, u64)>> = vec![Vec::new(); m as usize + 1];
    gs[0].push((0, 1));
    for u in 0..=n {
        let mut next: Vec<Vec<(u64, u64)>> = Vec::with_capacity(gs.len());
        for (v, g) in gs.iter().enumerate() {
            let res = (a as i64 * v as i64 - b as i64 * u as i64).pow(2) as u64;
            let mut merged = merge_tables(next.last().map_or(&[][..], Vec::as_slice), g);
            for entry in &mut merged {
                entry.0 += res;
            }
            next.push(merged);
        }
        gs = next;
    }
    let total: u64 = gs[m as usize]
        .iter()
        .filter(|&&(val, _)| val as f64 >= zeta)
        .map(|&(_, f)| f)
        .sum();
    total as f64 / combinations
}

/// Merges two value-sorted frequency tables, adding frequencies of equal values.
fn merge_tables(x: &[(u64, u64)], y: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(x.len() + y.len());
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        match x[i].0.cmp(&y[j].0) {
            std::cmp::Ordering::Less => {
                out.push(x[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(y[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((x[i].0, x[i].1 + y[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&x[i..]);
    out.extend_from_slice(&y[j..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_small_statistic() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let (t, p) = cramervonmises_2samp(&x, &x);
        assert!(t < 0.1, "{t}");
        assert!(p > 0.9, "{p}");
        assert!(cramervonmises_2samp(&[1.0], &x).0.is_nan());
    }

    #[test]
    fn exact_pvalue_of_separated_samples_is_minimal() {
        // All of x below y: the most extreme arrangement, p = 2 / C(8, 4) = 1/35.
        let (_, p) = cramervonmises_2samp(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]);
        assert!((p - 2.0 / 70.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn limiting_cdf_is_increasing() {
        let a = cdf_cvm_inf(0.1);
        let b = cdf_cvm_inf(0.5);
        assert!(0.0 < a && a < b && b < 1.0);
    }
}
