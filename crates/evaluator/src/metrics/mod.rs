//! Captioning, VQA and referring-expression metrics that reproduce the official scorers.
//!
//! Each scorer follows its reference implementation operation by operation, quirks included
//! (documented where they appear), so numbers compare with published ones:
//! - captions: [`ptb_tokenize`] (pycocoevalcap's tokenization, no Java), [`bleu`], [`rouge`] and
//!   [`cider`] as pycocoevalcap's `Bleu(4)`, `Rouge` and `Cider`, on [`captions`] inputs;
//! - VQA: [`vqa`] as the VQA API's `vqaEval.py`, [`anls`] as the Robust Reading Competition
//!   scripts, [`exact_match`];
//! - referring expressions: [`refcoco`] (location tokens, IoU, acc@0.5).
//!
//! `tests/reference_metrics.rs` checks them against the Python originals.

pub mod anls;
pub mod bleu;
pub mod captions;
pub mod cider;
pub mod exact_match;
pub mod ptb_tokenize;
mod pystr;
pub mod refcoco;
pub mod rouge;
pub mod vqa;
