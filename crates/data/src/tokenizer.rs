//! Text tokenizer: a thin wrapper over a Hugging Face `tokenizers::Tokenizer`.

use std::path::{Path, PathBuf};

use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::{Lowercase, NormalizerWrapper};
use tokenizers::pre_tokenizers::punctuation::Punctuation;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{
    AddedToken, PostProcessor, SplitDelimiterBehavior, Tokenizer, TruncationDirection,
};

use crate::error::{DataError, Result};

/// Padding token of trained tokenizers (id 0).
pub const PAD_TOKEN: &str = "<pad>";
/// End-of-sequence token of trained tokenizers (id 1).
pub const EOS_TOKEN: &str = "</s>";
/// Unknown-word token of trained tokenizers (id 2).
pub const UNK_TOKEN: &str = "<unk>";

/// Tokens tried, in order, as end-of-sequence when a foreign tokenizer has no `</s>`.
const EOS_FALLBACKS: &[&str] = &[
    "<eos>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "[SEP]",
    "<|eos|>",
];

/// A tokenizer with known pad and end-of-sequence ids, producing fixed-length id rows.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    pad: u32,
    eos: u32,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("pad", &self.pad)
            .field("eos", &self.eos)
            .finish()
    }
}

fn tok_err(context: impl Into<String>, message: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        context: context.into(),
        message: message.to_string(),
    }
}

impl TextTokenizer {
    /// Trains a lowercase word-level tokenizer with `<pad>`=0, `</s>`=1, `<unk>`=2.
    ///
    /// `vocab_size` counts the three special tokens; rarer words beyond it map to `<unk>`.
    pub fn train(texts: &[String], vocab_size: usize) -> Result<TextTokenizer> {
        const CTX: &str = "training";
        if vocab_size < 4 {
            return Err(DataError::config(
                "vocab_size",
                format!("{vocab_size} leaves no room beyond the 3 special tokens"),
            ));
        }
        let specials = [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN]
            .iter()
            .map(|t| AddedToken::from(*t, true))
            .collect();
        let trainer = WordLevelTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(1)
            .show_progress(false)
            .special_tokens(specials)
            .build()
            .map_err(|e| tok_err(CTX, e))?;
        let mut trainer = TrainerWrapper::WordLevelTrainer(trainer);
        let mut tok = Tokenizer::new(ModelWrapper::WordLevel(WordLevel::default()));
        tok.with_normalizer(Some(NormalizerWrapper::Lowercase(Lowercase)));
        tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Whitespace(Whitespace {}),
            PreTokenizerWrapper::Punctuation(Punctuation::new(SplitDelimiterBehavior::Isolated)),
        ]))));
        tok.train(&mut trainer, texts.iter())
            .map_err(|e| tok_err(CTX, e))?;
        // The trainer lists special tokens first; check rather than trust it.
        for (want, token) in [PAD_TOKEN, EOS_TOKEN, UNK_TOKEN].iter().enumerate() {
            let got = tok.token_to_id(token);
            if got != Some(want as u32) {
                return Err(tok_err(
                    CTX,
                    format!("{token} got id {got:?}, expected {want}"),
                ));
            }
        }
        Self::from_tokenizer(tok, CTX)
    }

    /// Wraps an existing tokenizer, finding its pad and end-of-sequence ids.
    ///
    /// `origin` names the tokenizer in error messages.
    pub fn from_tokenizer(inner: Tokenizer, origin: &str) -> Result<TextTokenizer> {
        let pad = inner
            .token_to_id(PAD_TOKEN)
            .or_else(|| inner.get_padding().map(|p| p.pad_id));
        let eos = inner
            .token_to_id(EOS_TOKEN)
            .or_else(|| EOS_FALLBACKS.iter().find_map(|t| inner.token_to_id(t)));
        match (pad, eos) {
            (Some(pad), Some(eos)) => Ok(TextTokenizer { inner, pad, eos }),
            (pad, eos) => {
                let mut missing = Vec::new();
                if pad.is_none() {
                    missing.push(format!("a {PAD_TOKEN} token or padding settings"));
                }
                if eos.is_none() {
                    missing.push(format!(
                        "an end-of-sequence token ({EOS_TOKEN} or one of {EOS_FALLBACKS:?})"
                    ));
                }
                Err(tok_err(origin, format!("lacks {}", missing.join(" and "))))
            }
        }
    }

    /// Loads any Hugging Face `tokenizer.json` (a hub tokenizer is used as it is: normaliser,
    /// pre-tokeniser, post-processor), or a SentencePiece `.model` file read as transformers'
    /// T5 tokenizer reads it ([`crate::sentencepiece`]).
    pub fn load(path: &Path) -> Result<TextTokenizer> {
        let ctx = path.display().to_string();
        let inner: Tokenizer = if path.extension().is_some_and(|e| e == "model") {
            crate::sentencepiece::SentencePieceModel::load(path)?.to_tokenizer(path)?
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
            text.parse().map_err(|e| tok_err(&ctx, e))?
        };
        Self::from_tokenizer(inner, &ctx)
    }

    /// Saves as `tokenizer.json` format, atomically (temp file then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let ctx = path.display().to_string();
        let json = self.inner.to_string(true).map_err(|e| tok_err(&ctx, e))?;
        Ok(palisade_files::write(path, json)?)
    }

    /// Number of ids, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id used for padding.
    pub fn pad_id(&self) -> i64 {
        i64::from(self.pad)
    }

    /// Id appended after the text.
    pub fn eos_id(&self) -> i64 {
        i64::from(self.eos)
    }

    /// Token ids of `text` without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| tok_err(format!("encoding {text:?}"), e))?;
        Ok(enc.get_ids().iter().map(|&i| i64::from(i)).collect())
    }

    /// The ids the model sees for `text`: the tokenizer's post-processor applied (a hub T5's
    /// appends `</s>`, Gemma's prepends `<bos>`), or for a tokenizer without one, EOS appended.
    /// With `max_len`, the text is cut first so that the special tokens still fit.
    pub fn encode_for_model(&self, text: &str, max_len: Option<usize>) -> Result<Vec<i64>> {
        let ctx = || format!("encoding {text:?}");
        let mut enc = self
            .inner
            .encode(text, false)
            .map_err(|e| tok_err(ctx(), e))?;
        let post = self.inner.get_post_processor();
        let added = post.map_or(1, |p| p.added_tokens(false));
        if let Some(len) = max_len {
            enc.truncate(len.saturating_sub(added), 0, TruncationDirection::Right);
        }
        let mut ids: Vec<i64> = match post {
            Some(_) => self
                .inner
                .post_process(enc, None, true)
                .map_err(|e| tok_err(ctx(), e))?
                .get_ids()
                .iter()
                .map(|&i| i64::from(i))
                .collect(),
            None => enc.get_ids().iter().map(|&i| i64::from(i)).collect(),
        };
        if post.is_none() {
            ids.push(self.eos_id());
        }
        if let Some(len) = max_len {
            ids.truncate(len);
        }
        Ok(ids)
    }

    /// Exactly `len` ids: [`Self::encode_for_model`] cut to fit (EOS kept), then padding.
    pub fn encode_fixed(&self, text: &str, len: usize) -> Result<Vec<i64>> {
        if len == 0 {
            return Err(DataError::config("text_len", "must be at least 1"));
        }
        let mut ids = self.encode_for_model(text, Some(len))?;
        ids.resize(len, self.pad_id());
        Ok(ids)
    }

    /// Text of `ids`, skipping special tokens (pad, EOS) and negative ids. Adjacent location
    /// tokens are written together (`<loc0001><loc0002>`), as PaLI writes boxes.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids: Vec<u32> = ids.iter().filter_map(|&i| u32::try_from(i).ok()).collect();
        let text = self
            .inner
            .decode(&ids, true)
            .map_err(|e| tok_err(format!("decoding {ids:?}"), e))?;
        Ok(text.replace("> <loc", "><loc"))
    }

    /// The wrapped Hugging Face tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Adds PaLI's location tokens `<loc0000>` … `<loc1023>` (ordinary added tokens, so decoding
    /// keeps them); tokens already present are left as they are.
    pub fn with_loc_tokens(mut self) -> TextTokenizer {
        let missing: Vec<AddedToken> = (0..LOC_TOKENS)
            .map(loc_token)
            .filter(|t| self.inner.token_to_id(t).is_none())
            .map(|t| AddedToken::from(t, false))
            .collect();
        self.inner.add_tokens(&missing);
        self
    }

    /// Id of `<loc0000>` when the location tokens are present (they are consecutive).
    pub fn loc_base(&self) -> Option<i64> {
        let base = self.inner.token_to_id(&loc_token(0))?;
        let last = self.inner.token_to_id(&loc_token(LOC_TOKENS - 1))?;
        (last == base + LOC_TOKENS as u32 - 1).then_some(i64::from(base))
    }
}

/// The ids the model would see for each of `texts` with the tokenizer at `path`
/// (`palisade tokenize`).
pub fn tokenize_texts<S: AsRef<str>>(path: &Path, texts: &[S]) -> Result<Vec<Vec<i64>>> {
    let tok = TextTokenizer::load(path)?;
    texts
        .iter()
        .map(|t| tok.encode_for_model(t.as_ref(), None))
        .collect()
}

/// Number of location bins (PaLI: 1024).
pub const LOC_TOKENS: usize = 1024;

/// The location token of bin `v`, e.g. `<loc0042>`.
pub fn loc_token(v: usize) -> String {
    format!("<loc{v:04}>")
}

/// Trains a tokenizer on every `text` value of `shards` and saves it to `out`.
pub fn train_tokenizer_for(
    shards: &[PathBuf],
    vocab_size: usize,
    out: &Path,
) -> Result<TextTokenizer> {
    let mut texts = Vec::new();
    for shard in shards {
        texts.extend(crate::shards::read_text_column(shard, "text")?);
    }
    let tok = TextTokenizer::train(&texts, vocab_size)?;
    tok.save(out)?;
    tracing::info!(
        path = %out.display(),
        texts = texts.len(),
        vocab = tok.vocab_size(),
        "trained tokenizer"
    );
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_tokens_are_added_once_and_survive_decoding() {
        let tok = TextTokenizer::train(&corpus(), 32)
            .unwrap()
            .with_loc_tokens();
        let base = tok.loc_base().unwrap();
        assert_eq!(tok.vocab_size() as i64, base + 1024);
        let ids = tok.encode("<loc0000><loc1023> red circle").unwrap();
        assert_eq!(&ids[..2], &[base, base + 1023]);
        let text = tok.decode(&ids).unwrap();
        assert!(text.starts_with("<loc0000><loc1023> red"), "{text}");
        let again = tok.clone().with_loc_tokens();
        assert_eq!(again.vocab_size(), tok.vocab_size());
    }

    fn corpus() -> Vec<String> {
        [
            "A red circle.",
            "a blue square",
            "A RED square, top left!",
            "a green cross",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn special_ids_are_fixed() {
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        assert_eq!(tok.pad_id(), 0);
        assert_eq!(tok.eos_id(), 1);
        assert_eq!(tok.inner().token_to_id(UNK_TOKEN), Some(2));
        // 3 specials + a red circle . blue square , top left ! green cross
        assert_eq!(tok.vocab_size(), 3 + 12);
    }

    #[test]
    fn vocab_size_caps_the_vocabulary() {
        let tok = TextTokenizer::train(&corpus(), 6).unwrap();
        assert_eq!(tok.vocab_size(), 6);
        // "a" is the most frequent word, so it survives the cap.
        assert_eq!(tok.encode("a").unwrap(), vec![3]);
        // "cross" is rare, so it becomes <unk>.
        assert_eq!(tok.encode("cross").unwrap(), vec![2]);
    }

    #[test]
    fn lowercases_and_splits_punctuation() {
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        assert_eq!(
            tok.encode("RED circle.").unwrap(),
            tok.encode("red circle .").unwrap()
        );
        assert_eq!(tok.encode("red!!").unwrap().len(), 3);
    }

    #[test]
    fn encode_fixed_pads_and_truncates_keeping_eos() {
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        let plain = tok.encode("a red circle").unwrap();
        assert_eq!(plain.len(), 3);

        let padded = tok.encode_fixed("a red circle", 6).unwrap();
        assert_eq!(&padded[..3], &plain[..]);
        assert_eq!(&padded[3..], &[1, 0, 0]);

        let cut = tok.encode_fixed("a red circle", 3).unwrap();
        assert_eq!(cut, vec![plain[0], plain[1], 1]);

        assert_eq!(tok.encode_fixed("", 2).unwrap(), vec![1, 0]);
        assert!(tok.encode_fixed("a", 0).is_err());
    }

    #[test]
    fn decode_skips_specials() {
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        let ids = tok.encode_fixed("a red circle", 8).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "a red circle");
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let tok = TextTokenizer::train(&corpus(), 100).unwrap();
        tok.save(&path).unwrap();
        let back = TextTokenizer::load(&path).unwrap();
        assert_eq!(back.vocab_size(), tok.vocab_size());
        assert_eq!(
            back.encode_fixed("a blue cross", 5).unwrap(),
            tok.encode_fixed("a blue cross", 5).unwrap()
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file left behind");
    }

    #[test]
    fn load_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = TextTokenizer::load(&path).unwrap_err().to_string();
        assert!(err.contains("broken.json"), "{err}");
        let err = TextTokenizer::load(&dir.path().join("absent.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.json"), "{err}");
    }

    /// A foreign word-level tokenizer.json with the given vocabulary and padding.
    fn foreign(vocab: &str, padding: &str) -> String {
        format!(
            r#"{{"version":"1.0","truncation":null,"padding":{padding},"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{{"type":"Whitespace"}},"post_processor":null,
            "decoder":null,"model":{{"type":"WordLevel","vocab":{vocab},"unk_token":"[UNK]"}}}}"#
        )
    }

    #[test]
    fn foreign_tokenizer_falls_back_to_padding_and_sep() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("foreign.json");
        let padding = r#"{"strategy":"BatchLongest","direction":"Right","pad_to_multiple_of":null,
            "pad_id":5,"pad_type_id":0,"pad_token":"[PAD]"}"#;
        std::fs::write(&path, foreign(r#"{"[UNK]":0,"[SEP]":7,"hi":3}"#, padding)).unwrap();
        let tok = TextTokenizer::load(&path).unwrap();
        assert_eq!((tok.pad_id(), tok.eos_id()), (5, 7));
        assert_eq!(tok.encode_fixed("hi", 4).unwrap(), vec![3, 7, 5, 5]);
    }

    #[test]
    fn foreign_tokenizer_without_eos_or_pad_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bare.json");
        std::fs::write(&path, foreign(r#"{"[UNK]":0,"hi":1}"#, "null")).unwrap();
        let err = TextTokenizer::load(&path).unwrap_err().to_string();
        assert!(err.contains("bare.json"), "{err}");
        assert!(err.contains("<pad>") && err.contains("</s>"), "{err}");
    }
}
