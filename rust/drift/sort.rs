//! Fast ascending sort of NaN-free f64 values: an LSD radix sort on order-preserving integer keys.

const RADIX_BITS: u32 = 11;
const BUCKETS: usize = 1 << RADIX_BITS;
const PASSES: usize = 6; // 6 * 11 >= 64
/// Below this length the comparison sort is faster than six counting passes.
const RADIX_MIN: usize = 2048;

/// Maps an f64 to a u64 whose unsigned order is `f64::total_cmp`'s order.
#[inline]
fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

#[inline]
fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Sorts `values` ascending in `f64::total_cmp` order (so `-0.0` before `0.0`).
pub fn sort_f64(values: &mut [f64]) {
    let n = values.len();
    if n < RADIX_MIN {
        values.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = values.iter().map(|&x| key(x)).collect();
    let mut counts = vec![[0_usize; BUCKETS]; PASSES];
    for &k in &keys {
        for (p, c) in counts.iter_mut().enumerate() {
            c[((k >> (p as u32 * RADIX_BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let mut scratch = vec![0_u64; n];
    for (p, c) in counts.iter_mut().enumerate() {
        // A digit shared by every key orders nothing: skip the pass.
        if c.contains(&n) {
            continue;
        }
        let mut sum = 0;
        for slot in c.iter_mut() {
            let v = *slot;
            *slot = sum;
            sum += v;
        }
        let shift = p as u32 * RADIX_BITS;
        for &k in &keys {
            let d = ((k >> shift) as usize) & (BUCKETS - 1);
            scratch[c[d]] = k;
            c[d] += 1;
        }
        std::mem::swap(&mut keys, &mut scratch);
    }
    for (v, &k) in values.iter_mut().zip(&keys) {
        *v = unkey(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_total_cmp_sort() {
        let mut state = 12_345_u64;
        let mut v: Vec<f64> = (0..10_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                match i % 7 {
                    0 => -0.0,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    3 => (state >> 40) as f64,
                    _ => (state as i64) as f64 / 1e9,
                }
            })
            .collect();
        let mut want = v.clone();
        want.sort_unstable_by(f64::total_cmp);
        sort_f64(&mut v);
        assert!(v.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
        let mut small = vec![3.0, -1.0, 0.0, -0.0];
        sort_f64(&mut small);
        assert_eq!(
            small.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            [-1.0_f64, -0.0, 0.0, 3.0].map(f64::to_bits)
        );
    }
}
