//! Python `str` and NumPy semantics that the reference scorers rely on.
//!
//! The official scorers split with `str.split()`, strip with `str.strip()` and average with
//! `np.mean`; matching them exactly needs Python's whitespace set and NumPy's summation order.

/// Python's `str.isspace()` for one character: Rust's whitespace plus U+001C..U+001F.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.split()`: runs of whitespace separate fields, no empty fields.
pub(crate) fn split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_space).filter(|w| !w.is_empty())
}

/// Python's `s.strip()`.
pub(crate) fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `np.mean` of a 1-D float64 array: NumPy's pairwise sum divided by the length.
pub(crate) fn np_mean(xs: &[f64]) -> f64 {
    pairwise_sum(xs) / xs.len() as f64
}

/// NumPy's `pairwise_sum_DOUBLE`: blocks of 128 summed in 8 lanes, halves summed recursively.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &x| s + x)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[full..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_python_whitespace() {
        let s = " a\u{1f}b\u{a0}c\t\n d\u{3000}";
        assert_eq!(split(s).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(split("").count(), 0);
        assert_eq!(strip("\u{1c} x y \u{85}"), "x y");
    }

    #[test]
    fn pairwise_sum_differs_from_sequential_like_numpy() {
        // 1e16 + 1 + ... : the sequential sum loses every 1, the 8-lane sum keeps them.
        let mut xs = vec![1.0f64; 16];
        xs[0] = 1e16;
        let sequential = xs.iter().fold(0.0, |s, &x| s + x);
        assert_eq!(sequential, 1e16);
        // Lanes: r0 = 1e16 (+1 rounds away), r1..r7 = 2 each; values from NumPy 2.4.
        assert_eq!(pairwise_sum(&xs), 1e16 + 14.0);
        let mut long = vec![1.0f64; 301];
        long[0] = 1e16;
        assert_eq!(pairwise_sum(&long), 1.0000000000000292e16);
        assert_eq!(np_mean(&[1.0, 2.0, 4.0]), 7.0 / 3.0);
    }
}
