//! Zero-shot classification: classes become text embeddings (templates averaged), each image
//! takes the class whose embedding scores highest.

/// Accuracy of `argmax_c scores[i][c]` against `labels[i]` (a class index, or None when the
/// example's label is not among the classes, which counts as a miss).
pub fn accuracy(scores: &[Vec<f32>], labels: &[Option<usize>]) -> f64 {
    let correct = scores
        .iter()
        .zip(labels)
        .filter(|(row, l)| {
            let pred = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &s)| if s > b.1 { (i, s) } else { b },
                )
                .0;
            **l == Some(pred)
        })
        .count();
    correct as f64 / scores.len().max(1) as f64
}

/// Share of the most frequent class: the best a constant guess can do.
pub fn majority_rate(labels: &[Option<usize>], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    for l in labels.iter().flatten() {
        counts[*l] += 1;
    }
    counts.into_iter().max().unwrap_or(0) as f64 / labels.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_accuracy_and_majority() {
        let scores = vec![vec![0.1, 0.9], vec![0.8, 0.2], vec![0.3, 0.4]];
        let labels = vec![Some(1), Some(1), None];
        assert!((accuracy(&scores, &labels) - 1.0 / 3.0).abs() < 1e-12);
        assert!((majority_rate(&labels, 2) - 2.0 / 3.0).abs() < 1e-12);
    }
}
