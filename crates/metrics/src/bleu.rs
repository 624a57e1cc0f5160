//! BLEU-1..4 exactly as pycocoevalcap's `Bleu(4)` (`bleu_scorer.py`, option "closest").
//!
//! Corpus BLEU-n is the geometric mean of the clipped n-gram precisions summed over all images,
//! times the brevity penalty exp(1 − r/c) when the candidate length c (summed) is below the
//! effective reference length r (summed; per image the reference length closest to the
//! candidate's, the shorter on ties). Per-image scores use the same formula on one image.
//!
//! Constants and quirks kept from the reference code: every precision is
//! (correct + 1e-15) / (guess + 1e-9), so an empty candidate scores ~0 rather than failing;
//! the brevity ratio is (c + 1e-15) / (r + 1e-9); tokens are `str.split()` fields.

use std::collections::HashMap;

use crate::captions::{check, ImageCaptions};
use crate::error::Result;
use crate::pystr::split;

/// Largest n-gram order.
pub const N: usize = 4;
/// Added to the numerator of each precision ("tiny" in the reference code).
const TINY: f64 = 1e-15;
/// Added to the denominator of each precision ("small" in the reference code).
const SMALL: f64 = 1e-9;

/// BLEU-1..4 for the corpus and for each image, as `Bleu(4).compute_score(gts, res)` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct BleuScores {
    /// Corpus BLEU-1, -2, -3, -4.
    pub corpus: [f64; N],
    /// Per image (input order), BLEU-1..4.
    pub per_image: Vec<[f64; N]>,
}

/// The statistics `cook_test` keeps for one image.
struct Cooked {
    testlen: usize,
    reflen: usize,
    guess: [usize; N],
    correct: [usize; N],
}

fn ngram_counts<'a>(words: &'a [&'a str]) -> HashMap<&'a [&'a str], usize> {
    let mut counts = HashMap::new();
    for k in 1..=N {
        for gram in words.windows(k) {
            *counts.entry(gram).or_insert(0) += 1;
        }
    }
    counts
}

fn cook(candidate: &str, references: &[String]) -> Cooked {
    let refs: Vec<Vec<&str>> = references.iter().map(|r| split(r).collect()).collect();
    let mut max_counts: HashMap<&[&str], usize> = HashMap::new();
    for r in &refs {
        for (gram, c) in ngram_counts(r) {
            let m = max_counts.entry(gram).or_insert(0);
            *m = (*m).max(c);
        }
    }
    let words: Vec<&str> = split(candidate).collect();
    let testlen = words.len();
    // "closest": the reference length nearest the candidate's, the smaller one on ties.
    let reflen = refs
        .iter()
        .map(|r| (r.len().abs_diff(testlen), r.len()))
        .min()
        .map_or(0, |(_, l)| l);
    let mut guess = [0; N];
    for (k, g) in guess.iter_mut().enumerate() {
        *g = (testlen + 1).saturating_sub(k + 1);
    }
    let mut correct = [0; N];
    for (gram, c) in ngram_counts(&words) {
        correct[gram.len() - 1] += c.min(max_counts.get(gram).copied().unwrap_or(0));
    }
    Cooked {
        testlen,
        reflen,
        guess,
        correct,
    }
}

/// BLEU-1..4 from summed lengths and n-gram statistics, with the reference code's constants.
fn score(testlen: f64, reflen: f64, guess: &[f64; N], correct: &[f64; N]) -> [f64; N] {
    let mut out = [0.0; N];
    let mut bleu = 1.0f64;
    for k in 0..N {
        bleu *= (correct[k] + TINY) / (guess[k] + SMALL);
        // Python calls libm's pow; opaque exponents stop LLVM from turning pow(x, 0.5) into
        // sqrt, which can differ in the last bit.
        out[k] = bleu.powf(std::hint::black_box(1.0 / (k + 1) as f64));
    }
    let ratio = (testlen + TINY) / (reflen + SMALL);
    if ratio < 1.0 {
        for o in &mut out {
            *o *= (1.0 - 1.0 / ratio).exp();
        }
    }
    out
}

/// BLEU-1..4 of tokenized captions, corpus-level and per image.
pub fn bleu(images: &[ImageCaptions]) -> Result<BleuScores> {
    check(images, "BLEU")?;
    let cooked: Vec<Cooked> = images
        .iter()
        .map(|im| cook(&im.candidate, &im.references))
        .collect();
    let (mut testlen, mut reflen) = (0usize, 0usize);
    let (mut guess, mut correct) = ([0usize; N], [0usize; N]);
    let mut per_image = Vec::with_capacity(cooked.len());
    for c in &cooked {
        testlen += c.testlen;
        reflen += c.reflen;
        for k in 0..N {
            guess[k] += c.guess[k];
            correct[k] += c.correct[k];
        }
        per_image.push(score(
            c.testlen as f64,
            c.reflen as f64,
            &c.guess.map(|x| x as f64),
            &c.correct.map(|x| x as f64),
        ));
    }
    let corpus = score(
        testlen as f64,
        reflen as f64,
        &guess.map(|x| x as f64),
        &correct.map(|x| x as f64),
    );
    Ok(BleuScores { corpus, per_image })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn im(cand: &str, refs: &[&str]) -> ImageCaptions {
        ImageCaptions {
            image_id: "i".into(),
            candidate: cand.into(),
            references: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn perfect_match_is_one() {
        let s = bleu(&[im("a b c d e", &["a b c d e", "x"])]).unwrap();
        for b in s.corpus {
            assert!((b - 1.0).abs() < 1e-8, "{b}");
        }
    }

    #[test]
    fn clipping_and_brevity_by_hand() {
        // "the the the" vs "the cat sat on": unigram precision clipped to 1/3; no bigram
        // matches (BLEU-2 ≈ 0); c = 3 < r = 4 → brevity exp(1 − 4/3).
        let s = bleu(&[im("the the the", &["the cat sat on"])]).unwrap();
        let bp = (1.0f64 - 4.0 / 3.0).exp();
        assert!((s.corpus[0] - bp / 3.0).abs() < 1e-9, "{:?}", s.corpus);
        assert!(s.corpus[1] < 1e-6);
        assert_eq!(s.per_image[0], s.corpus);
    }

    #[test]
    fn closest_reference_length_prefers_shorter_on_ties() {
        // Candidate of 3 words, references of 2 and 4 words: tie → 2, no brevity penalty.
        let s = bleu(&[im("a b c", &["a b c d", "a b"])]).unwrap();
        assert!((s.corpus[0] - 1.0).abs() < 1e-8, "{:?}", s.corpus);
        // Corpus statistics are summed before the geometric mean, unlike the per-image mean.
        let two = bleu(&[im("a b", &["a b"]), im("c d", &["x y"])]).unwrap();
        assert!((two.corpus[0] - 0.5).abs() < 1e-9);
        assert!(two.per_image[1][0] < 1e-6);
    }

    #[test]
    fn empty_candidate_scores_zero() {
        let s = bleu(&[im("", &["a b"])]).unwrap();
        assert!(s.corpus.iter().all(|&b| b < 1e-6), "{:?}", s.corpus);
    }
}
