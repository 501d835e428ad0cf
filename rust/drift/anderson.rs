//! k-sample Anderson-Darling test for two samples (`scipy.stats.anderson_ksamp`, midrank variant).

use super::wasserstein::pairwise_sum;

/// (normalised statistic, p-value clipped to [0.001, 0.25]) for two sorted, NaN-free samples.
///
/// NaN when a sample is empty, there are fewer than two distinct values, or fewer than 4 values in all.
#[must_use]
pub fn anderson_ksamp(a: &[f64], b: &[f64]) -> (f64, f64) {
    let (n1, n2) = (a.len(), b.len());
    let total = n1 + n2;
    if n1 == 0 || n2 == 0 || total < 4 {
        return (f64::NAN, f64::NAN);
    }
    let nf = total as f64;
    let (mut i, mut j) = (0, 0);
    let (mut inner_a, mut inner_b) = (Vec::new(), Vec::new());
    let mut distinct = 0;
    while i < n1 || j < n2 {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        distinct += 1;
        let left = (i + j) as f64;
        let (i0, j0) = (i, j);
        while i < n1 && a[i] <= v {
            i += 1;
        }
        while j < n2 && b[j] <= v {
            j += 1;
        }
        let lj = ((i - i0) + (j - j0)) as f64;
        let bj = left + lj / 2.0;
        let denom = bj * (nf - bj) - nf * lj / 4.0;
        for (inner, m_right, f, n) in [(&mut inner_a, i, i - i0, n1), (&mut inner_b, j, j - j0, n2)] {
            let mij = m_right as f64 - f as f64 / 2.0;
            let d = nf * mij - bj * n as f64;
            inner.push(lj / nf * (d * d) / denom);
        }
    }
    if distinct < 2 {
        return (f64::NAN, f64::NAN);
    }
    let a2kn = (pairwise_sum(&inner_a) / n1 as f64 + pairwise_sum(&inner_b) / n2 as f64) * (nf - 1.0) / nf;

    let k = 2.0;
    let h_sum = 1.0 / n1 as f64 + 1.0 / n2 as f64;
    // hs_cs = cumsum(1 / arange(N - 1, 1, -1)); h = hs_cs[-1] + 1; g = sum(hs_cs / arange(2, N))
    let mut hs_cs = Vec::with_capacity(total - 2);
    let mut acc = 0.0;
    for d in (2..total).rev() {
        acc += 1.0 / d as f64;
        hs_cs.push(acc);
    }
    let h = acc + 1.0;
    let g_terms: Vec<f64> = hs_cs.iter().enumerate().map(|(idx, &c)| c / (idx + 2) as f64).collect();
    let g = pairwise_sum(&g_terms);
    let ca = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * h_sum;
    let cb = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * h_sum - 8.0 * h + 4.0 * g - 6.0;
    let cc = (6.0 * h + 2.0 * g - 2.0) * k * k + (4.0 * h - 4.0 * g + 6.0) * k + (2.0 * h - 6.0) * h_sum + 4.0 * h;
    let cd = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let sigmasq = (ca * nf.powi(3) + cb * nf.powi(2) + cc * nf + cd) / ((nf - 1.0) * (nf - 2.0) * (nf - 3.0));
    let m = k - 1.0;
    let a2 = (a2kn - m) / sigmasq.sqrt();
    (a2, pvalue(a2, m))
}

/// scipy's interpolation: a quadratic least-squares fit of ln(significance) on the critical values.
fn pvalue(a2: f64, m: f64) -> f64 {
    const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
    const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
    const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
    const SIG: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
    if a2.is_nan() {
        return f64::NAN;
    }
    let crit: Vec<f64> = (0..7).map(|i| B0[i] + B1[i] / m.sqrt() + B2[i] / m).collect();
    let (cmin, cmax) = crit.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
        (lo.min(c), hi.max(c))
    });
    if a2 < cmin {
        return 0.25;
    }
    if a2 > cmax {
        return 0.001;
    }
    let ys: Vec<f64> = SIG.iter().map(|s| s.ln()).collect();
    let [c2, c1, c0] = polyfit2(&crit, &ys);
    (c2 * a2 * a2 + c1 * a2 + c0).exp()
}

/// Least-squares quadratic `y ~ c2 x^2 + c1 x + c0` (normal equations on centred x for conditioning).
fn polyfit2(x: &[f64], y: &[f64]) -> [f64; 3] {
    let n = x.len() as f64;
    let xm = x.iter().sum::<f64>() / n;
    let mut s = [0.0_f64; 5];
    let mut t = [0.0_f64; 3];
    for (&xi, &yi) in x.iter().zip(y) {
        let u = xi - xm;
        let mut p = 1.0;
        for (k, sk) in s.iter_mut().enumerate() {
            *sk += p;
            if k < 3 {
                t[k] += p * yi;
            }
            p *= u;
        }
    }
    // Solve [[s0 s1 s2], [s1 s2 s3], [s2 s3 s4]] [d0 d1 d2] = t by Cramer's rule.
    let m = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]];
    let det3 = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let det = det3(&m);
    let mut d = [0.0; 3];
    for (col, dc) in d.iter_mut().enumerate() {
        let mut mc = m;
        for row in 0..3 {
            mc[row][col] = t[row];
        }
        *dc = det3(&mc) / det;
    }
    // Back from u = x - xm: d0 + d1 u + d2 u^2
    [d[2], d[1] - 2.0 * d[2] * xm, d[0] - d[1] * xm + d[2] * xm * xm]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_samples_floor_pvalue() {
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let b: Vec<f64> = (100..130).map(f64::from).collect();
        let (s, p) = anderson_ksamp(&a, &b);
        assert!(s > 10.0);
        assert_eq!(p, 0.001);
    }

    #[test]
    fn degenerate_inputs_are_nan() {
        assert!(anderson_ksamp(&[1.0, 1.0], &[1.0, 1.0]).0.is_nan());
        assert!(anderson_ksamp(&[], &[1.0, 2.0]).0.is_nan());
    }

    #[test]
    fn polyfit_recovers_a_parabola() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v * v - v + 0.5).collect();
        let c = polyfit2(&x, &y);
        assert!((c[0] - 2.0).abs() < 1e-12 && (c[1] + 1.0).abs() < 1e-12 && (c[2] - 0.5).abs() < 1e-12);
    }
}
