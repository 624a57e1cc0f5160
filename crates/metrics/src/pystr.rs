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

/// Python's `s.rstrip()`.
pub(crate) fn rstrip(s: &str) -> &str {
    s.trim_end_matches(is_space)
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

/// First code points of the runs of Unicode decimal digits (category Nd, Unicode 14 as in
/// Python 3.11), each ten long except the mathematical digits U+1D7CE..U+1D7FF.
const DECIMAL_RUNS: [u32; 62] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Python's `\d` for `str` patterns: a Unicode decimal digit.
pub(crate) fn is_decimal(c: char) -> bool {
    let c = c as u32;
    DECIMAL_RUNS.iter().any(|&start| {
        let len = if start == 0x1D7CE { 50 } else { 10 };
        (start..start + len).contains(&c)
    })
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
