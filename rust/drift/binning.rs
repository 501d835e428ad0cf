//! Bin edges and histograms: numpy's linear quantiles (the PSI bins) and Evidently's Sturges/per-value bins.

/// `np.quantile(sorted, [k / bins for k in 1..bins])` (method "linear"), for a sorted, non-empty slice.
#[must_use]
pub fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    if sorted.is_empty() || bins < 2 {
        return Vec::new();
    }
    let n = sorted.len();
    (1..bins)
        .map(|k| {
            let q = k as f64 / bins as f64;
            let virtual_index = (n - 1) as f64 * q;
            let prev = virtual_index.floor();
            let gamma = virtual_index - prev;
            let (lo, hi) = if virtual_index >= (n - 1) as f64 {
                (n - 1, n - 1)
            } else {
                let p = prev as usize;
                (p, p + 1)
            };
            lerp(sorted[lo], sorted[hi], gamma)
        })
        .collect()
}

/// numpy's `_lerp`: `a + (b - a) t`, evaluated from `b` when `t >= 0.5` (as numpy does, for monotonicity).
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// The bin of `x` on `edges`: the number of edges `<= x` (`np.searchsorted(edges, x, side="right")`).
#[inline]
#[must_use]
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    // Few edges (the usual 9): a branch-free count of edges <= x vectorises and never mispredicts, where a binary
    // search takes ~4 unpredictable branches per value. Same answer: the edges are sorted.
    if edges.len() <= 32 {
        edges.iter().map(|&e| usize::from(e <= x)).sum()
    } else {
        edges.partition_point(|&e| e <= x)
    }
}

/// Counts per bin (`edges.len() + 1` bins, outer bins open) of already sorted values, in one merge pass.
#[must_use]
pub fn histogram_sorted(edges: &[f64], sorted: &[f64]) -> Vec<u64> {
    let mut counts = vec![0_u64; edges.len() + 1];
    let mut start = 0;
    for (b, &e) in edges.iter().enumerate() {
        let end = start + sorted[start..].partition_point(|&x| x < e);
        counts[b] += (end - start) as u64;
        start = end;
    }
    counts[edges.len()] += (sorted.len() - start) as u64;
    // `x < e` puts values equal to an edge into the bin above it, as "number of edges <= x" does.
    counts
}

/// Sorted distinct values with their counts (run-length encoding of a sorted slice).
#[must_use]
pub fn value_counts_sorted(sorted: &[f64]) -> (Vec<f64>, Vec<u64>) {
    let mut values: Vec<f64> = Vec::new();
    let mut counts: Vec<u64> = Vec::new();
    for &x in sorted {
        match values.last() {
            Some(&last) if last.total_cmp(&x).is_eq() => {
                if let Some(c) = counts.last_mut() {
                    *c += 1;
                }
            }
            _ => {
                values.push(x);
                counts.push(1);
            }
        }
    }
    (values, counts)
}

/// Aligns two (sorted values, counts) tables on the union of their values.
#[must_use]
pub fn union_counts(a: (&[f64], &[u64]), b: (&[f64], &[u64])) -> (Vec<f64>, Vec<u64>, Vec<u64>) {
    let (mut i, mut j) = (0, 0);
    let (mut keys, mut ca, mut cb) = (Vec::new(), Vec::new(), Vec::new());
    while i < a.0.len() || j < b.0.len() {
        let ord = match (a.0.get(i), b.0.get(j)) {
            (Some(x), Some(y)) => x.total_cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                keys.push(a.0[i]);
                ca.push(a.1[i]);
                cb.push(0);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                keys.push(b.0[j]);
                ca.push(0);
                cb.push(b.1[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                keys.push(a.0[i]);
                ca.push(a.1[i]);
                cb.push(b.1[j]);
                i += 1;
                j += 1;
            }
        }
    }
    (keys, ca, cb)
}

/// `np.histogram_bin_edges(concat(a, b), bins="sturges")` for two sorted, non-empty samples.
#[must_use]
pub fn sturges_edges(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (Some(&a0), Some(&b0), Some(&a1), Some(&b1)) = (a.first(), b.first(), a.last(), b.last()) else {
        return Vec::new();
    };
    let (mut first, mut last) = (a0.min(b0), a1.max(b1));
    let size = (a.len() + b.len()) as f64;
    let ptp = last - first;
    let width = ptp / (size.log2() + 1.0);
    let n_bins = if width > 0.0 { (ptp / width).ceil() as usize } else { 1 };
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    linspace(first, last, n_bins + 1)
}

/// `np.linspace(start, stop, num)` with `endpoint=True`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut out: Vec<f64> = (0..num)
        .map(|i| {
            if step == 0.0 {
                i as f64 / div * delta + start
            } else {
                i as f64 * step + start
            }
        })
        .collect();
    if let Some(l) = out.last_mut() {
        *l = stop;
    }
    out
}

/// `np.histogram(sorted, edges)[0]`: half-open bins `[e_i, e_{i+1})`, the last one closed; values outside dropped.
#[must_use]
pub fn histogram_closed(edges: &[f64], sorted: &[f64]) -> Vec<u64> {
    if edges.len() < 2 {
        return Vec::new();
    }
    let nb = edges.len() - 1;
    let mut counts = vec![0_u64; nb];
    let left = |e: f64| sorted.partition_point(|&x| x < e);
    let mut prev = left(edges[0]);
    for (i, &e) in edges[1..].iter().enumerate() {
        let cut = if i + 1 == nb {
            sorted.partition_point(|&x| x <= e)
        } else {
            left(e)
        };
        counts[i] = cut.saturating_sub(prev) as u64;
        prev = cut.max(prev);
    }
    counts
}

/// Number of distinct values in a sorted slice.
#[must_use]
pub fn distinct_sorted(sorted: &[f64]) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    1 + sorted.windows(2).filter(|w| w[0].total_cmp(&w[1]).is_ne()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_edges_match_numpy_linear() {
        let v: Vec<f64> = (0..11).map(f64::from).collect();
        let e = quantile_edges(&v, 10);
        assert_eq!(e, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        // np.quantile([1, 2, 4], [0.25, 0.5, 0.75]) = [1.5, 2., 3.]
        assert_eq!(quantile_edges(&[1.0, 2.0, 4.0], 4), vec![1.5, 2.0, 3.0]);
        assert_eq!(quantile_edges(&[3.0], 4), vec![3.0, 3.0, 3.0]);
    }

    #[test]
    fn bins_count_edges_at_or_below() {
        let edges = [1.0, 2.0, 2.0, 3.0];
        assert_eq!(bin_of(&edges, 0.5), 0);
        assert_eq!(bin_of(&edges, 1.0), 1);
        assert_eq!(bin_of(&edges, 2.0), 3);
        assert_eq!(bin_of(&edges, 9.0), 4);
        let sorted = [0.5, 1.0, 2.0, 2.0, 2.5, 9.0];
        assert_eq!(histogram_sorted(&edges, &sorted), vec![1, 1, 0, 3, 1]);
    }

    #[test]
    fn value_counts_and_union() {
        let (v, c) = value_counts_sorted(&[1.0, 1.0, 2.0, 5.0, 5.0, 5.0]);
        assert_eq!((v.clone(), c.clone()), (vec![1.0, 2.0, 5.0], vec![2, 1, 3]));
        let (k, a, b) = union_counts((&v, &c), (&[0.0, 2.0], &[4, 4]));
        assert_eq!(k, vec![0.0, 1.0, 2.0, 5.0]);
        assert_eq!(a, vec![0, 2, 1, 3]);
        assert_eq!(b, vec![4, 0, 4, 0]);
    }

    #[test]
    fn sturges_and_closed_histogram() {
        let a: Vec<f64> = (0..8).map(f64::from).collect();
        let edges = sturges_edges(&a, &a);
        // 16 values: log2(16) + 1 = 5 bins over [0, 7]
        assert_eq!(edges.len(), 6);
        assert_eq!(histogram_closed(&edges, &a).iter().sum::<u64>(), 8);
        assert_eq!(sturges_edges(&[2.0], &[2.0]), vec![1.5, 2.5]);
    }
}
