//! Captioning, VQA and referring-expression metrics that reproduce the official scorers.
//!
//! Each scorer follows its reference implementation operation by operation (including known
//! quirks, documented where they appear), so numbers can be compared with published ones:
//! pycocoevalcap for BLEU / ROUGE-L / CIDEr-D (after its PTB tokenization), the VQA API's
//! `vqaEval.py` for VQA accuracy, the ST-VQA / DocVQA definition for ANLS.

pub mod bleu;
pub mod captions;
pub mod cider;
pub mod ptb_tokenize;
mod pystr;
pub mod refcoco;
pub mod rouge;
pub mod vqa;
