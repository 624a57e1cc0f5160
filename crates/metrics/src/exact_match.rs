//! Exact-match accuracy for short answers: case-insensitive equality after trimming.
//!
//! A prediction counts when, stripped of surrounding whitespace and lower-cased (Python's
//! `s.strip().lower()`), it equals one of the ground-truth answers treated the same way.

use crate::error::{MetricsError, Result};
use crate::pystr::strip;

/// 1.0 when the prediction matches one of the answers, else 0.0.
pub fn exact_match_question(prediction: &str, answers: &[String]) -> f64 {
    let pred = strip(prediction).to_lowercase();
    let hit = answers.iter().any(|a| strip(a).to_lowercase() == pred);
    if hit {
        1.0
    } else {
        0.0
    }
}

/// Fraction of (prediction, answers) pairs that match; errors on an empty set.
pub fn exact_match(examples: &[(String, Vec<String>)]) -> Result<f64> {
    if examples.is_empty() {
        return Err(MetricsError::Invalid(
            "exact match: no questions to score".into(),
        ));
    }
    let hits: f64 = examples
        .iter()
        .map(|(p, a)| exact_match_question(p, a))
        .sum();
    Ok(hits / examples.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_ignores_case_only() {
        let a = vec!["Red".to_string(), "crimson".to_string()];
        assert_eq!(exact_match_question(" red\n", &a), 1.0);
        assert_eq!(exact_match_question("CRIMSON", &a), 1.0);
        assert_eq!(exact_match_question("red.", &a), 0.0);
        let ex = vec![("red".to_string(), a.clone()), ("blue".to_string(), a)];
        assert_eq!(exact_match(&ex).unwrap(), 0.5);
        assert!(exact_match(&[]).is_err());
    }
}
