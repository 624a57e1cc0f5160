//! ROUGE-L exactly as pycocoevalcap's `Rouge` (`rouge.py`).
//!
//! Per image: the longest common subsequence (LCS) of the candidate with each reference gives
//! precision LCS/|candidate| and recall LCS/|reference|; the maxima over references, P and R
//! (taken separately), give F = (1 + β²)·P·R / (R + β²·P) with β = 1.2; the corpus score is the
//! mean over images.
//!
//! Quirk kept: tokens are `str.split(" ")` fields — split on single spaces only, so an empty
//! caption is one empty token and double spaces make empty tokens, which match each other.

use crate::captions::{check, CorpusScore, ImageCaptions};
use crate::error::Result;
use crate::pystr::np_mean;

/// Weight of recall relative to precision.
pub const BETA: f64 = 1.2;

/// Length of the longest common subsequence of two token sequences.
fn lcs(a: &[&str], b: &[&str]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE-L of one candidate against its references (`Rouge.calc_score`).
pub fn rouge_l_image(candidate: &str, references: &[String]) -> f64 {
    let cand: Vec<&str> = candidate.split(' ').collect();
    let (mut prec_max, mut rec_max) = (0.0f64, 0.0f64);
    for r in references {
        let toks: Vec<&str> = r.split(' ').collect();
        let l = lcs(&toks, &cand) as f64;
        prec_max = prec_max.max(l / cand.len() as f64);
        rec_max = rec_max.max(l / toks.len() as f64);
    }
    if prec_max != 0.0 && rec_max != 0.0 {
        let b2 = BETA * BETA;
        ((1.0 + b2) * prec_max * rec_max) / (rec_max + b2 * prec_max)
    } else {
        0.0
    }
}

/// ROUGE-L of tokenized captions: the mean over images and one score per image.
pub fn rouge_l(images: &[ImageCaptions]) -> Result<CorpusScore> {
    check(images, "ROUGE-L")?;
    let per_image: Vec<f64> = images
        .iter()
        .map(|im| rouge_l_image(&im.candidate, &im.references))
        .collect();
    Ok(CorpusScore {
        score: np_mean(&per_image),
        per_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lcs_by_hand() {
        assert_eq!(lcs(&["a", "b", "c", "d"], &["b", "d", "a"]), 2);
        assert_eq!(lcs(&[], &["a"]), 0);
    }

    #[test]
    fn precision_and_recall_maxed_separately() {
        // Candidate "a b c d"; ref 1 "a b" → P 2/4, R 1; ref 2 "a b c d e f g h" → P 1, R 1/2.
        // Max P = 1 and max R = 1 come from different references → F = 1.
        let s = rouge_l_image("a b c d", &refs(&["a b", "a b c d e f g h"]));
        assert!((s - 1.0).abs() < 1e-12, "{s}");
        // One reference: P = 2/3, R = 1/2 → F = 2.44·(1/3) / (1/2 + 1.44·2/3).
        let s = rouge_l_image("a x b", &refs(&["a b y z"]));
        let want = 2.44 * (2.0 / 3.0) * 0.5 / (0.5 + 1.44 * 2.0 / 3.0);
        assert!((s - want).abs() < 1e-12, "{s} vs {want}");
    }

    #[test]
    fn empty_tokens_match_like_python_split_on_space() {
        // "".split(" ") == [""]: an empty candidate against an empty reference scores 1.
        assert_eq!(rouge_l_image("", &refs(&[""])), 1.0);
        assert_eq!(rouge_l_image("", &refs(&["a"])), 0.0);
        let s = rouge_l(&[ImageCaptions {
            image_id: "1".into(),
            candidate: "a b".into(),
            references: refs(&["a b"]),
        }])
        .unwrap();
        assert_eq!(s.score, 1.0);
    }
}
