//! ANLS (average normalized Levenshtein similarity), as used for ST-VQA, TextVQA-style and
//! DocVQA evaluation.
//!
//! Per question: both strings are normalised as the Robust Reading Competition scripts do
//! (`" ".join(s.strip().lower().split())`); NL = edit distance (in code points) / the larger
//! length, where — as in those scripts — lengths are taken after upper-casing (`len(s.upper())`,
//! so "ß" counts 2), and NL = 0 for two empty strings; the score is 1 − NL when NL < 0.5 and 0
//! otherwise, maximised over the ground-truth answers; ANLS is the mean over questions. (Some
//! scripts test `1 − NL < 0.5` instead, which differs only at NL = 0.5 exactly: there this
//! gives 0, like the `anls` package.)

use crate::error::{MetricsError, Result};
use crate::pystr::split;

/// Normalized distances at or above this score 0.
pub const THRESHOLD: f64 = 0.5;

/// Lower-cases and collapses whitespace, as the reference scripts do before comparing.
fn normalize(s: &str) -> Vec<char> {
    let lower = s.to_lowercase();
    split(&lower)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect()
}

/// Levenshtein distance between two character sequences (unit insert/delete/substitute).
pub fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ANLS of one prediction: the best thresholded similarity over the answers (0 if none).
pub fn anls_question(prediction: &str, answers: &[String]) -> f64 {
    let pred = normalize(prediction);
    answers
        .iter()
        .map(|a| {
            let gold = normalize(a);
            let upper_len = |s: &[char]| s.iter().flat_map(|c| c.to_uppercase()).count();
            let len = upper_len(&pred).max(upper_len(&gold));
            let nl = if len == 0 {
                0.0
            } else {
                levenshtein(&pred, &gold) as f64 / len as f64
            };
            if nl < THRESHOLD {
                1.0 - nl
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

/// Mean ANLS over (prediction, answers) pairs; errors on an empty set or a question without
/// answers (named by its index).
pub fn anls(examples: &[(String, Vec<String>)]) -> Result<f64> {
    if examples.is_empty() {
        return Err(MetricsError::Invalid("ANLS: no questions to score".into()));
    }
    let mut sum = 0.0;
    for (i, (pred, answers)) in examples.iter().enumerate() {
        if answers.is_empty() {
            return Err(MetricsError::Invalid(format!(
                "ANLS: question {i} has no ground-truth answers"
            )));
        }
        sum += anls_question(pred, answers);
    }
    Ok(sum / examples.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn levenshtein_by_hand() {
        let c = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(levenshtein(&c("kitten"), &c("sitting")), 3);
        assert_eq!(levenshtein(&c(""), &c("abc")), 3);
        assert_eq!(levenshtein(&c("é"), &c("e")), 1);
    }

    #[test]
    fn threshold_and_normalisation() {
        // Case and spacing are ignored.
        assert_eq!(
            anls_question("  Dear   DR. lobo ", &v(&["dear dr. lobo"])),
            1.0
        );
        // "12/15/89" vs "12/15/88": NL = 1/8 → 0.875.
        assert_eq!(anls_question("12/15/89", &v(&["12/15/88"])), 0.875);
        // NL = 2/4 = 0.5 is not below the threshold → 0.
        assert_eq!(anls_question("abxy", &v(&["abcd"])), 0.0);
        // Best answer wins; empty vs empty is a perfect match.
        assert_eq!(anls_question("abc", &v(&["zzz", "abd"])), 1.0 - 1.0 / 3.0);
        assert_eq!(anls_question("", &v(&[""])), 1.0);
        // Lengths count upper-cased characters: "aß" is 3 long, so NL = 1/3, not 1/2.
        assert!((anls_question("aß", &v(&["ab"])) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn mean_and_errors() {
        let ex = vec![("a".to_string(), v(&["a"])), ("b".to_string(), v(&["x"]))];
        assert_eq!(anls(&ex).unwrap(), 0.5);
        let bad = vec![("a".to_string(), vec![])];
        assert!(anls(&bad).unwrap_err().to_string().contains("question 0"));
        assert!(anls(&[]).is_err());
    }
}
