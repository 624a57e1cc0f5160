//! Caption-metric inputs: one candidate and its references per image, as pycocoevalcap takes them.

use crate::error::{MetricsError, Result};
use crate::ptb_tokenize::tokenize_lines;

/// One image's candidate caption and reference captions.
///
/// The scorers expect tokenized text (tokens joined by spaces); [`tokenize_for_coco`] turns raw
/// captions into that form the way `COCOEvalCap` does.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageCaptions {
    /// Identifies the image in error messages.
    pub image_id: String,
    /// The generated caption.
    pub candidate: String,
    /// The ground-truth captions (at least one).
    pub references: Vec<String>,
}

/// A corpus score with the per-image scores it averages, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusScore {
    /// The corpus-level score (pycocoevalcap's first return value).
    pub score: f64,
    /// One score per image (pycocoevalcap's second return value).
    pub per_image: Vec<f64>,
}

/// Tokenizes raw captions as `COCOEvalCap.evaluate` does: all references in one PTB tokenizer
/// run, all candidates in another, then pycocoevalcap's punctuation removal.
pub fn tokenize_for_coco(images: &[ImageCaptions]) -> Vec<ImageCaptions> {
    let refs: Vec<&str> = images
        .iter()
        .flat_map(|im| im.references.iter().map(String::as_str))
        .collect();
    let cands: Vec<&str> = images.iter().map(|im| im.candidate.as_str()).collect();
    let mut refs = tokenize_lines(&refs).into_iter();
    let mut cands = tokenize_lines(&cands).into_iter();
    images
        .iter()
        .map(|im| ImageCaptions {
            image_id: im.image_id.clone(),
            candidate: cands.next().unwrap_or_default(),
            references: im
                .references
                .iter()
                .map(|_| refs.next().unwrap_or_default())
                .collect(),
        })
        .collect()
}

/// Rejects what pycocoevalcap's scorers assert against: no images, an image without references.
pub(crate) fn check(images: &[ImageCaptions], metric: &str) -> Result<()> {
    if images.is_empty() {
        return Err(MetricsError::Invalid(format!(
            "{metric}: no images to score"
        )));
    }
    if let Some(im) = images.iter().find(|im| im.references.is_empty()) {
        return Err(MetricsError::Invalid(format!(
            "{metric}: image {:?} has no reference captions",
            im.image_id
        )));
    }
    Ok(())
}
