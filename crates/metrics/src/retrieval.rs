//! Image↔text retrieval Recall@K with multiple correct answers per query.
//!
//! A query's correct answers are all items whose caption is identical to its own (as COCO
//! counts any of an image's captions), so duplicate captions neither help nor hurt.

use std::collections::HashMap;

/// Recall@K for each K, as fractions in [0, 1].
pub type Recalls = Vec<(usize, f64)>;

/// `scores[q][c]` for queries × candidates; `gold[q]` the correct candidates of query q.
/// A query counts at K when some correct candidate has fewer than K wrong candidates scored
/// strictly above it.
pub fn recall_at_k(scores: &[Vec<f32>], gold: &[Vec<usize>], ks: &[usize]) -> Recalls {
    let ranks: Vec<usize> = scores
        .iter()
        .zip(gold)
        .map(|(row, g)| {
            let best = g.iter().map(|&c| row[c]).fold(f32::NEG_INFINITY, f32::max);
            row.iter()
                .enumerate()
                .filter(|(c, s)| **s > best && !g.contains(c))
                .count()
        })
        .collect();
    let n = ranks.len().max(1) as f64;
    ks.iter()
        .map(|&k| (k, ranks.iter().filter(|&&r| r < k).count() as f64 / n))
        .collect()
}

/// Expected Recall@K of a random ranking: mean over queries of 1 − C(N−g, K)/C(N, K).
pub fn chance_recall(n_candidates: usize, gold: &[Vec<usize>], ks: &[usize]) -> Recalls {
    mean_over_queries(ks, gold.len(), |q, k| {
        tie_hit(n_candidates, gold[q].len(), k)
    })
}

/// Expected Recall@K of the best ranking a pairwise scorer can give when what the data says
/// about each pair is all it can know: for query q, `ahead[q]` candidates are ranked above its
/// gold ones for certain and `tied[q]` (the gold among them) cannot be told apart from them,
/// so it scores 1 − C(T−g, K−A)/C(T, K−A) (0 when A ≥ K). `None` when some query has fewer
/// tied candidates than gold ones (annotations that do not cover the gold).
pub fn ceiling_recall(
    ahead: &[usize],
    tied: &[usize],
    gold: &[Vec<usize>],
    ks: &[usize],
) -> Option<Recalls> {
    let n = gold.len();
    if ahead.len() != n || tied.len() != n || tied.iter().zip(gold).any(|(t, g)| *t < g.len()) {
        return None;
    }
    Some(mean_over_queries(ks, n, |q, k| {
        match k.checked_sub(ahead[q]) {
            Some(left) if left > 0 => tie_hit(tied[q], gold[q].len(), left),
            _ => 0.0,
        }
    }))
}

fn mean_over_queries(ks: &[usize], queries: usize, hit: impl Fn(usize, usize) -> f64) -> Recalls {
    ks.iter()
        .map(|&k| {
            let sum: f64 = (0..queries).map(|q| hit(q, k)).sum();
            (k, sum / queries.max(1) as f64)
        })
        .collect()
}

/// The chance that the first `k` of `n` items in random order hold one of `g` correct ones.
fn tie_hit(n: usize, g: usize, k: usize) -> f64 {
    let miss: f64 = (0..k.min(n))
        .map(|t| (n.saturating_sub(g + t)) as f64 / (n - t) as f64)
        .product();
    1.0 - miss
}

/// For each item, the indices of all items with the identical caption (itself included).
pub fn same_caption_groups(texts: &[String]) -> Vec<Vec<usize>> {
    let mut by_text: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in texts.iter().enumerate() {
        by_text.entry(t.as_str()).or_default().push(i);
    }
    texts.iter().map(|t| by_text[t.as_str()].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_counts_hits() {
        let scores = vec![
            vec![0.9, 0.1, 0.2],
            vec![0.5, 0.4, 0.3],
            vec![0.1, 0.2, 0.3],
        ];
        let gold = vec![vec![0], vec![1], vec![2]];
        let r = recall_at_k(&scores, &gold, &[1, 2]);
        // Query 1 ranks its answer second; the others first.
        assert!((r[0].1 - 2.0 / 3.0).abs() < 1e-12);
        assert!((r[1].1 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ceiling_ranks_sure_candidates_first_and_ties_the_rest() {
        // Query 0: its gold is the only fitting candidate; query 1: one gold among 4 tied.
        let gold = vec![vec![0], vec![1]];
        let c = ceiling_recall(&[0, 0], &[1, 4], &gold, &[1, 2]).unwrap();
        assert!((c[0].1 - (1.0 + 0.25) / 2.0).abs() < 1e-12, "{c:?}");
        // R@2 for query 1: 1 − (3/4)(2/3) = 1/2.
        assert!((c[1].1 - (1.0 + 0.5) / 2.0).abs() < 1e-12, "{c:?}");
        // One candidate surely ahead of query 1's tie: R@1 lost, R@2 = 1/4.
        let c = ceiling_recall(&[0, 1], &[1, 4], &gold, &[1, 2]).unwrap();
        assert!((c[0].1 - 0.5).abs() < 1e-12, "{c:?}");
        assert!((c[1].1 - 1.25 / 2.0).abs() < 1e-12, "{c:?}");
        assert_eq!(
            ceiling_recall(&[0, 0], &[0, 4], &gold, &[1]),
            None,
            "gold not fitting"
        );
    }

    #[test]
    fn duplicates_are_all_correct_and_chance_is_exact() {
        let texts: Vec<String> = ["a", "b", "a"].iter().map(|s| s.to_string()).collect();
        let gold = same_caption_groups(&texts);
        assert_eq!(gold[2], vec![0, 2]);
        let c = chance_recall(3, &gold, &[1, 3]);
        assert!((c[0].1 - (2.0 / 3.0 + 1.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert!((c[1].1 - 1.0).abs() < 1e-12);
    }
}
