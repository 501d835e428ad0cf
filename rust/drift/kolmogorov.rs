//! The one-sample Kolmogorov distribution `kstwo.sf` and the one-sided Smirnov sum, ported from scipy.
//!
//! scipy's `_kolmogn` picks among Ruben-Gambino, the Durbin matrix (MTW), Pomeranz, Pelz-Good and
//! `2 * smirnov(n, x)` by `n` and `n x^2`; this module keeps those branches so p-values agree to 1e-9.

use super::smirnov::smirnov_sf;
use std::f64::consts::PI;

const E128: i32 = 128;

fn ep128() -> f64 {
    2_f64.powi(E128)
}

fn em128() -> f64 {
    2_f64.powi(-E128)
}

const STIRLING_COEFFS: [f64; 8] = [
    -0.029_550_653_594_771_242,
    0.006_410_256_410_256_41,
    -0.001_917_526_917_526_917_6,
    0.000_841_750_841_750_841_7,
    -0.000_595_238_095_238_095_3,
    0.000_793_650_793_650_793_7,
    -0.002_777_777_777_777_778,
    0.083_333_333_333_333_33,
];

fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING_COEFFS.iter().fold(0.0, |acc, &c| acc * x + c);
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

/// `kstwo.sf(x, n)`: survival function of the two-sided one-sample KS statistic (scipy `_kolmogn`, cdf=False).
#[must_use]
pub fn kolmogn_sf(n: f64, x: f64) -> f64 {
    if n.is_nan() || x.is_nan() || n <= 0.0 || n.fract() != 0.0 {
        return f64::NAN;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let t = n * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140.0 {
            let mut p = 1.0;
            for i in 1..=(n as u64) {
                p *= i as f64 * (1.0 / n) * (2.0 * t - 1.0);
            }
            p
        } else {
            (log_nfactorial_div_n_pow_n(n) + n * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - prob).clamp(0.0, 1.0);
    }
    if t >= n - 1.0 {
        return (2.0 * (1.0 - x).powf(n)).clamp(0.0, 1.0);
    }
    let ni = n as i64;
    if x >= 0.5 {
        return (2.0 * smirnov_sf(ni, x)).clamp(0.0, 1.0);
    }
    let nxsquared = t * x;
    if n <= 140.0 {
        if nxsquared <= 0.754_693 {
            return (1.0 - dmtw_cdf(ni, x)).clamp(0.0, 1.0);
        }
        if nxsquared <= 4.0 {
            return (1.0 - pomeranz_cdf(ni, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov_sf(ni, x)).clamp(0.0, 1.0);
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return (2.0 * smirnov_sf(ni, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000.0 && n * x.powf(1.5) <= 1.4 {
        dmtw_cdf(ni, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..m {
                c[i * m + j] += aik * b[k * m + j];
            }
        }
    }
    c
}

/// Durbin matrix algorithm (Marsaglia-Tsang-Wang): `Pr(D_n <= d)`.
#[must_use]
pub fn dmtw_cdf(n: i64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nd = n as f64 * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut hm = vec![0.0; m * m];
    let mut v: Vec<f64> = (1..=m).map(|i| 1.0 - h.powi(i as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    for i in 1..m {
        for (r, &wv) in (i - 1..m).zip(w.iter()) {
            hm[r * m + i] = wv;
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut hpwr: Vec<f64> = (0..m * m).map(|i| if i / m == i % m { 1.0 } else { 0.0 }).collect();
    let mut nn = n;
    let mut expnt: i32 = 0;
    let mut hexpnt: i32 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += hexpnt;
        }
        hm = matmul(&hm, &hm, m);
        hexpnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > ep128() {
            for x in &mut hm {
                *x /= ep128();
            }
            hexpnt += E128;
        }
        nn /= 2;
    }
    let mut p = hpwr[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = i as f64 * p / n as f64;
        if p.abs() < em128() {
            p *= ep128();
            expnt -= E128;
        }
    }
    if expnt != 0 {
        p *= 2_f64.powi(expnt);
    }
    p.clamp(0.0, 1.0)
}

fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (ip1div2, ip1mod2) = ((i + 1) / 2, (i + 1) % 2);
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// Pomeranz recursion: `Pr(D_n <= x)`.
#[must_use]
pub fn pomeranz_cdf(n: i64, x: f64) -> f64 {
    let t = n as f64 * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let (mut gpower, mut twogpower, mut onem2gpower) = (vec![1.0; npwrs], vec![1.0; npwrs], vec![1.0; npwrs]);
    let nf = n as f64;
    let (g_n, two_g_n, one_m_2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_m_2g_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s): (i64, i64) = (0, 0);
    let mut expnt: i32 = 0;
    let (mut j1, _) = pomeranz_j1j2(0, n, ll, ceilf, roundf);
    let mut j2: i64;
    for i in 1..(2 * n + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        (j1, j2) = pomeranz_j1j2(i, n, ll, ceilf, roundf);
        let pwrs = if i == 1 || i == 2 * n + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let start = (k1 - v0s).max(0) as usize;
            let end = ((k1 - v0s + ln2).max(0) as usize).min(v0.len());
            let a = &v0[start.min(end)..end];
            let b = &pwrs[..(ln2 as usize).min(pwrs.len())];
            let conv_start = (j1 - k1).max(0) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            for (o, slot) in v1.iter_mut().take(conv_len).enumerate() {
                let kk = conv_start + o;
                let mut s = 0.0;
                for (ia, &av) in a.iter().enumerate() {
                    if let Some(&bv) = kk.checked_sub(ia).and_then(|ib| b.get(ib)) {
                        s += av * bv;
                    }
                }
                *slot = s;
            }
            let vmax = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if 0.0 < vmax && vmax < em128() {
                for v in &mut v1 {
                    *v *= ep128();
                }
                expnt -= E128;
            }
            v1s = v0s + j1 - k1;
        }
    }
    let mut ans = v1.get((n - v1s).max(0) as usize).copied().unwrap_or(f64::NAN);
    for m in 1..=n {
        if ans.abs() > ep128() {
            ans *= em128();
            expnt += E128;
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans *= 2_f64.powi(expnt);
    }
    ans.clamp(0.0, 1.0)
}

/// Pelz-Good asymptotic approximation of `Pr(D_n <= x)` (scipy `_kolmogn_PelzGood`).
#[must_use]
pub fn pelz_good_cdf(n: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = n.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut kk = [0.0_f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * k) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in kk.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let div = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (acc, dv) in kk.iter_mut().zip(div) {
        *acc = *acc * q * sqrt2pi / dv;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3_f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for k in (1..=maxk).rev() {
        let ks2 = (k * k) as f64;
        let qp = q.powf(ks2);
        let kspi = PI * k as f64;
        k2extra += ks2 * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp;
    }
    kk[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let mut sum = 0.0;
    for (i, acc) in kk.iter().enumerate() {
        sum += acc / n.powf(i as f64 / 2.0);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_algorithms_agree_where_both_apply() {
        // DMTW and Pomeranz are both exact.
        for (n, x) in [(20, 0.15), (50, 0.1), (100, 0.08)] {
            let a = dmtw_cdf(n, x);
            let b = pomeranz_cdf(n, x);
            assert!((a - b).abs() < 1e-10, "n={n} x={x}: {a} vs {b}");
        }
    }
}
