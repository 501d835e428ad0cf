//! One-sided Smirnov survival function `Pr(D+_n >= x)` (cephes `smirnov`), summed in log space.

use super::special::ln_binom;

/// `n * x` split exactly into floor and fractional part (cephes `modNX`, via an FMA error term).
fn mod_nx(n: i64, x: f64) -> (i64, f64) {
    let nf = n as f64;
    let p = nf * x;
    let err = nf.mul_add(x, -p);
    let mut fl = p.floor();
    let mut alpha = (p - fl) + err;
    if alpha < 0.0 {
        fl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        fl += 1.0;
        alpha = 0.0;
    }
    (fl as i64, alpha)
}

/// One-sided Smirnov survival function Pr(D+_n >= x) (cephes `smirnov`, Birnbaum-Tingey sum in log space).
#[must_use]
pub fn smirnov_sf(n: i64, x: f64) -> f64 {
    if !(n > 0 && (0.0..=1.0).contains(&x)) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (nxfl, alpha) = mod_nx(n, x);
    let mut n1mxfl = n - nxfl - i64::from(alpha != 0.0);
    let mut n1mxceil = n - nxfl;
    if alpha == 0.0 {
        n1mxfl -= 1;
        n1mxceil += 1;
    }
    if nxfl == 0 || (nxfl == 1 && alpha == 0.0) {
        let t = (1.0 + x).powi((n - 1) as i32);
        return (1.0 - x * t).clamp(0.0, 1.0);
    }
    if -2.0 * nf * x * x < -708.396_418_532_264_1 {
        return 0.0;
    }
    if nxfl >= n - 1 {
        return (1.0 - x).powf(nf).clamp(0.0, 1.0);
    }
    if n > 1_000_000 {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
    }
    let n_upper_terms = n - n1mxceil + 1;
    let use_upper = (n_upper_terms <= 1 && x < 0.5) || (n >= 10 && n_upper_terms <= 3 && x <= 0.5 / nf.sqrt());
    if use_upper {
        // Few alternating terms, v = n, n-1, ...: A_v = C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1).
        let mut sum = 0.0;
        for j in 0..n_upper_terms {
            let v = n - j;
            let c = ln_binom(nf, v as f64).exp();
            let t2 = ((n - v) as f64 / nf - x).powi((n - v) as i32);
            let t1 = (v as f64 / nf + x).powi((v - 1) as i32);
            sum += c * t1 * t2;
        }
        return (1.0 - x * sum).clamp(0.0, 1.0);
    }
    let n_terms = n1mxfl + 1;
    let vmid = n / 2;
    let mut sum = (1.0 - x).powf(nf) / x;
    // ln C(n, v), updated by ln((n - v + 1) / v) per term: one log instead of three log-gammas.
    let mut ln_c = 0.0;
    for v in 1..n_terms {
        ln_c += ((n - v + 1) as f64 / v as f64).ln();
        let t2x = (n - v) as f64 / nf - x;
        let t1x = v as f64 / nf + x;
        let ln_a = ln_c + (n - v) as f64 * t2x.ln() + (v - 1) as f64 * t1x.ln();
        let a = ln_a.exp();
        if a.is_finite() && a != 0.0 {
            sum += a;
            if 4.0 * (n_terms - v) as f64 * a < f64::EPSILON * sum && v != n_terms - 1 {
                break;
            }
        } else if v > vmid {
            break;
        }
    }
    (x * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smirnov_edges() {
        assert_eq!(smirnov_sf(1, 0.3), 0.7);
        assert_eq!(smirnov_sf(10, 0.0), 1.0);
        assert!(smirnov_sf(10, 0.999) < 1e-20);
        let s = smirnov_sf(1000, 0.05);
        // Asymptotically exp(-2 n x^2) = exp(-5)
        assert!(s > 0.004 && s < 0.008, "{s}");
    }
}
