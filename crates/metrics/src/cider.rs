//! CIDEr-D exactly as pycocoevalcap's `Cider` (`cider_scorer.py`).
//!
//! For each image and n = 1..4: tf-idf vectors of the candidate's and each reference's n-grams,
//! with document frequencies counted over the references of the evaluated images and
//! idf = log(N_images) − log(max(1, df)); the candidate's weights are clipped by the
//! reference's (`min` in the dot product), the cosine is damped by exp(−δ²/(2σ²)) with σ = 6,
//! and the result is averaged over n and over references and multiplied by 10.
//!
//! Quirks kept from the reference code:
//! - δ is the difference of the *bigram* counts (`length` is only incremented for n = 2),
//!   i.e. len − 1 for captions of two or more words, 0 for shorter ones.
//! - With a single image, log(N) = 0 and every score is 0.
//! - Tokens are `str.split()` fields (Python's whitespace set).
//! - The per-image score sums the four n-gram similarities then divides (NumPy's `np.mean`),
//!   the corpus score is `np.mean` over images (NumPy's pairwise summation).

use std::collections::HashMap;

use crate::captions::{check, CorpusScore, ImageCaptions};
use crate::error::Result;
use crate::pystr::{np_mean, split};

/// Largest n-gram order.
pub const N: usize = 4;
/// Standard deviation of the Gaussian length penalty.
pub const SIGMA: f64 = 6.0;

/// n-gram counts of one sentence, per order, in first-occurrence order (the order the reference
/// code's dicts iterate in, which fixes the floating-point summation order).
struct Counts<'a> {
    grams: [Vec<(&'a [&'a str], f64)>; N],
}

fn count_ngrams<'a>(words: &'a [&'a str]) -> Counts<'a> {
    let mut grams: [Vec<(&[&str], f64)>; N] = Default::default();
    for (k, out) in grams.iter_mut().enumerate() {
        let mut index: HashMap<&[&str], usize> = HashMap::new();
        for gram in words.windows(k + 1) {
            match index.get(gram) {
                Some(&i) => out[i].1 += 1.0,
                None => {
                    index.insert(gram, out.len());
                    out.push((gram, 1.0));
                }
            }
        }
    }
    Counts { grams }
}

/// tf-idf vector of one sentence: weights per order, their norms, and the bigram count.
struct Vector<'a> {
    weights: [Vec<(&'a [&'a str], f64)>; N],
    lookup: [HashMap<&'a [&'a str], f64>; N],
    norm: [f64; N],
    length: f64,
}

fn to_vector<'a>(
    counts: &Counts<'a>,
    df: &HashMap<&'a [&'a str], f64>,
    ref_len: f64,
) -> Vector<'a> {
    let mut v = Vector {
        weights: Default::default(),
        lookup: Default::default(),
        norm: [0.0; N],
        length: 0.0,
    };
    for (n, grams) in counts.grams.iter().enumerate() {
        let mut sq = 0.0;
        for &(gram, tf) in grams {
            let d = df.get(gram).copied().unwrap_or(0.0).max(1.0).ln();
            let w = tf * (ref_len - d);
            sq += w * w;
            v.weights[n].push((gram, w));
            v.lookup[n].insert(gram, w);
            if n == 1 {
                v.length += tf;
            }
        }
        v.norm[n] = sq.sqrt();
    }
    v
}

/// The four clipped, length-penalised cosine similarities of a candidate and one reference.
fn sim(hyp: &Vector, reference: &Vector) -> [f64; N] {
    let delta = hyp.length - reference.length;
    let penalty = std::f64::consts::E.powf(-(delta * delta) / (2.0 * SIGMA * SIGMA));
    let mut val = [0.0; N];
    for (n, out) in val.iter_mut().enumerate() {
        for &(gram, w) in &hyp.weights[n] {
            let r = reference.lookup[n].get(gram).copied().unwrap_or(0.0);
            *out += w.min(r) * r;
        }
        if hyp.norm[n] != 0.0 && reference.norm[n] != 0.0 {
            *out /= hyp.norm[n] * reference.norm[n];
        }
        *out *= penalty;
    }
    val
}

/// CIDEr-D of tokenized captions: the corpus mean and one score per image, as
/// `Cider().compute_score(gts, res)`.
pub fn cider(images: &[ImageCaptions]) -> Result<CorpusScore> {
    check(images, "CIDEr")?;
    let cand_words: Vec<Vec<&str>> = images
        .iter()
        .map(|im| split(&im.candidate).collect())
        .collect();
    let ref_words: Vec<Vec<Vec<&str>>> = images
        .iter()
        .map(|im| im.references.iter().map(|r| split(r).collect()).collect())
        .collect();
    let cand_counts: Vec<Counts> = cand_words.iter().map(|w| count_ngrams(w)).collect();
    let ref_counts: Vec<Vec<Counts>> = ref_words
        .iter()
        .map(|refs| refs.iter().map(|w| count_ngrams(w)).collect())
        .collect();

    // Document frequency: in how many images' reference sets each n-gram occurs.
    let mut df: HashMap<&[&str], f64> = HashMap::new();
    for refs in &ref_counts {
        let mut seen: std::collections::HashSet<&[&str]> = std::collections::HashSet::new();
        for c in refs {
            for grams in &c.grams {
                for &(gram, _) in grams {
                    if seen.insert(gram) {
                        *df.entry(gram).or_insert(0.0) += 1.0;
                    }
                }
            }
        }
    }
    let ref_len = (images.len() as f64).ln();

    let per_image: Vec<f64> = cand_counts
        .iter()
        .zip(&ref_counts)
        .map(|(cand, refs)| {
            let hyp = to_vector(cand, &df, ref_len);
            let mut score = [0.0; N];
            for r in refs {
                let s = sim(&hyp, &to_vector(r, &df, ref_len));
                for (acc, x) in score.iter_mut().zip(s) {
                    *acc += x;
                }
            }
            np_mean(&score) / refs.len() as f64 * 10.0
        })
        .collect();
    Ok(CorpusScore {
        score: np_mean(&per_image),
        per_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn im(id: &str, cand: &str, refs: &[&str]) -> ImageCaptions {
        ImageCaptions {
            image_id: id.into(),
            candidate: cand.into(),
            references: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn hand_computed_two_images() {
        // Image a: candidate = its only reference "x y"; image b shares no n-gram with a.
        // N = 2, ref_len = ln 2; "x", "y", "x y" have df 1 so weight ln 2 each; the cosine of
        // identical vectors is 1 for n = 1, 2 and 0 for n = 3, 4 (empty): (1 + 1) / 4 × 10 = 5.
        let images = [im("a", "x y", &["x y"]), im("b", "z w", &["q r"])];
        let s = cider(&images).unwrap();
        assert!((s.per_image[0] - 5.0).abs() < 1e-12, "{:?}", s.per_image);
        assert_eq!(s.per_image[1], 0.0);
        assert!((s.score - 2.5).abs() < 1e-12);
    }

    #[test]
    fn length_penalty_uses_bigram_counts_and_clips() {
        // Candidate "x x x y" vs reference "x y": δ = 3 − 1 = 2 bigrams → exp(−4/72).
        // Unigrams: hyp weights (3w, w), ref (w, w) with w = ln 2; clipped dot = w·w + w·w,
        // norms √10·w and √2·w → 2/√20. Bigrams: hyp {xx: 2w, xy: w}, ref {xy: w} → 1/√5.
        let images = [im("a", "x x x y", &["x y"]), im("b", "z", &["q"])];
        let s = cider(&images).unwrap();
        let pen = (-4.0f64 / 72.0).exp();
        let want = (2.0 / 20f64.sqrt() + 1.0 / 5f64.sqrt()) * pen / 4.0 * 10.0;
        assert!(
            (s.per_image[0] - want).abs() < 1e-12,
            "{} vs {want}",
            s.per_image[0]
        );
    }

    #[test]
    fn single_image_scores_zero_and_errors_name_the_image() {
        let s = cider(&[im("a", "x y", &["x y"])]).unwrap();
        assert_eq!(s.score, 0.0);
        let err = cider(&[im("a", "x", &["x"]), im("img7", "y", &[])]).unwrap_err();
        assert!(err.to_string().contains("img7"), "{err}");
        assert!(cider(&[]).is_err());
    }
}
