//! Captioning, VQA, referring-expression and retrieval metrics that reproduce the official
//! scorers, with no libtorch: pure functions over predictions and references.
//!
//! Each scorer follows its reference implementation operation by operation, quirks included
//! (documented where they appear), so numbers compare with published ones:
//! - captions: [`ptb_tokenize`] (pycocoevalcap's tokenization, no Java), [`bleu`], [`rouge`] and
//!   [`cider`] as pycocoevalcap's `Bleu(4)`, `Rouge` and `Cider`, on [`captions`] inputs;
//! - VQA: [`vqa`] as the VQA API's `vqaEval.py`, [`anls`] as the Robust Reading Competition
//!   scripts, [`exact_match`];
//! - referring expressions: [`refcoco`] (location tokens, IoU, acc@0.5);
//! - retrieval: [`retrieval`] (Recall@K with chance levels), [`zero_shot`] accuracy.
//!
//! On top of them, [`task_scores`] scores a PaLI benchmark's decoded predictions by [`TaskKind`]
//! and [`score`] scores official result files (`palisade score`); [`blind`] fits the baseline a
//! model that never sees the image would reach.
//! `tests/reference_metrics.rs` checks them against the Python originals.

pub mod anls;
pub mod bleu;
pub mod blind;
pub mod captions;
pub mod cider;
pub mod error;
pub mod exact_match;
pub mod ptb_tokenize;
mod pystr;
pub mod refcoco;
pub mod retrieval;
pub mod rouge;
pub mod score;
pub mod task;
pub mod task_scores;
pub mod vqa;
pub mod zero_shot;

pub use error::{MetricsError, Result};
pub use task::TaskKind;
