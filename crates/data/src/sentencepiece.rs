//! SentencePiece `.model` files (T5's `spiece.model`) read directly — their protobuf parsed
//! here, no Python at run time — into the tokenizer transformers' `T5TokenizerFast` converts
//! them to (`convert_slow_tokenizer.T5Converter`): the Unigram pieces and scores plus 100
//! `<extra_id_N>` tokens, the model's precompiled normaliser, `▁` pre-tokenisation, and `</s>`
//! appended after the text.

use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};
use tokenizers::Tokenizer;

use crate::error::{DataError, Result};

/// `<extra_id_N>` tokens T5's tokenizer appends to the pieces (its `extra_ids` default).
pub const EXTRA_IDS: usize = 100;

/// One piece of the vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Its text (`▁` marks a word start).
    pub piece: String,
    /// Its log-probability score.
    pub score: f32,
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub kind: i32,
}

/// What a `.model` file holds that tokenisation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SentencePieceModel {
    /// The vocabulary, in id order.
    pub pieces: Vec<Piece>,
    /// 1 Unigram, 2 BPE, 3 word, 4 char.
    pub model_type: i32,
    /// Id of the unknown piece.
    pub unk_id: i32,
    /// Whether unknown characters become byte pieces.
    pub byte_fallback: bool,
    /// The normaliser's compiled character map (empty: none).
    pub precompiled_charsmap: Vec<u8>,
}

/// Reads protobuf wire format: varints, and length-delimited, 32- and 64-bit fields.
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    /// The next field: (number, value), until the end.
    fn field(&mut self) -> Option<Option<(u64, Field<'a>)>> {
        if self.pos >= self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed
            }
            2 => {
                let n = self.varint()? as usize;
                Field::Bytes(self.take(n)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }
}

/// A field's value (64-bit fields are skipped: nothing read here has one).
enum Field<'a> {
    Varint(u64),
    Fixed,
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Every field of the message `buf`, or `None` when it is not protobuf.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut w = Wire { buf, pos: 0 };
    let mut out = Vec::new();
    while let Some(f) = w.field()? {
        out.push(f);
    }
    Some(out)
}

impl SentencePieceModel {
    /// Parses a `.model` file's bytes; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<SentencePieceModel> {
        let bad = |what: &str| DataError::Tokenizer {
            context: origin.display().to_string(),
            message: format!("not a SentencePiece model: {what}"),
        };
        let mut m = SentencePieceModel {
            pieces: Vec::new(),
            model_type: 1,
            unk_id: 0,
            byte_fallback: false,
            precompiled_charsmap: Vec::new(),
        };
        for (number, value) in fields(bytes).ok_or_else(|| bad("malformed protobuf"))? {
            match (number, value) {
                (1, Field::Bytes(b)) => {
                    let mut p = Piece {
                        piece: String::new(),
                        score: 0.0,
                        kind: 1,
                    };
                    for (n, v) in fields(b).ok_or_else(|| bad("malformed piece"))? {
                        match (n, v) {
                            (1, Field::Bytes(s)) => {
                                p.piece = String::from_utf8(s.to_vec())
                                    .map_err(|_| bad("a piece is not UTF-8"))?
                            }
                            (2, Field::Fixed32(f)) => p.score = f32::from_bits(f),
                            (3, Field::Varint(k)) => p.kind = k as i32,
                            _ => {}
                        }
                    }
                    m.pieces.push(p);
                }
                (2, Field::Bytes(b)) => {
                    for (n, v) in fields(b).ok_or_else(|| bad("malformed trainer_spec"))? {
                        match (n, v) {
                            (3, Field::Varint(t)) => m.model_type = t as i32,
                            (35, Field::Varint(b)) => m.byte_fallback = b != 0,
                            (40, Field::Varint(id)) => m.unk_id = id as i32,
                            _ => {}
                        }
                    }
                }
                (3, Field::Bytes(b)) => {
                    for (n, v) in fields(b).ok_or_else(|| bad("malformed normalizer_spec"))? {
                        if let (2, Field::Bytes(map)) = (n, v) {
                            m.precompiled_charsmap = map.to_vec();
                        }
                    }
                }
                _ => {}
            }
        }
        if m.pieces.is_empty() {
            return Err(bad("no pieces"));
        }
        Ok(m)
    }

    /// Reads a `.model` file.
    pub fn load(path: &Path) -> Result<SentencePieceModel> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::parse(&bytes, path)
    }

    /// The tokenizer transformers' `T5TokenizerFast` makes of this model, as `tokenizer.json`.
    pub fn to_tokenizer_json(&self, origin: &Path) -> Result<Value> {
        if self.model_type != 1 {
            return Err(DataError::Tokenizer {
                context: origin.display().to_string(),
                message: format!(
                    "model_type {} is not Unigram (T5, mT5, UL2); read BPE models (Gemma, Llama) from their tokenizer.json",
                    self.model_type
                ),
            });
        }
        let mut vocab: Vec<Value> = self
            .pieces
            .iter()
            .map(|p| json!([p.piece, f64::from(p.score)]))
            .collect();
        let base = vocab.len();
        vocab.extend(
            (0..EXTRA_IDS)
                .rev()
                .map(|i| json!([format!("<extra_id_{i}>"), 0.0])),
        );
        let eos = self
            .pieces
            .iter()
            .position(|p| p.piece == "</s>")
            .ok_or_else(|| DataError::Tokenizer {
                context: origin.display().to_string(),
                message: "has no </s> piece to end a text with".into(),
            })?;
        let added = |id: usize, content: &str, special: bool| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": special})
        };
        // Control and user-defined pieces, the unknown piece and the extra ids are added
        // tokens, as transformers' conversion and special-token map make them.
        let mut added_tokens: Vec<Value> = self
            .pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p.kind, 2..=4))
            .map(|(id, p)| added(id, &p.piece, p.kind != 4))
            .collect();
        added_tokens.extend(
            (0..EXTRA_IDS)
                .map(|k| added(base + k, &format!("<extra_id_{}>", EXTRA_IDS - 1 - k), true)),
        );
        let mut normalizers = Vec::new();
        if !self.precompiled_charsmap.is_empty() {
            normalizers.push(json!({"type": "Precompiled", "precompiled_charsmap":
                base64::engine::general_purpose::STANDARD.encode(&self.precompiled_charsmap)}));
        }
        normalizers.push(json!({"type": "Strip", "strip_left": false, "strip_right": true}));
        normalizers.push(json!({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": "▁"}));
        let metaspace = json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true});
        let seq = |id: &str| json!({"Sequence": {"id": id, "type_id": 0}});
        let eos_token = json!({"SpecialToken": {"id": "</s>", "type_id": 0}});
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens,
            "normalizer": {"type": "Sequence", "normalizers": normalizers},
            "pre_tokenizer": metaspace,
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [seq("A"), eos_token],
                "pair": [seq("A"), eos_token, seq("B"), eos_token],
                "special_tokens": {"</s>": {"id": "</s>", "ids": [eos], "tokens": ["</s>"]}}
            },
            "decoder": metaspace,
            "model": {"type": "Unigram", "unk_id": self.unk_id, "vocab": vocab,
                      "byte_fallback": self.byte_fallback}
        }))
    }

    /// The Hugging Face tokenizer of this model (see [`Self::to_tokenizer_json`]).
    pub fn to_tokenizer(&self, origin: &Path) -> Result<Tokenizer> {
        let json = self.to_tokenizer_json(origin)?;
        json.to_string().parse().map_err(|e| DataError::Tokenizer {
            context: origin.display().to_string(),
            message: format!("building the tokenizer: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }

    /// Protobuf bytes of a field.
    fn field(number: u64, wire: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        varint((number << 3) | wire, &mut out);
        if wire == 2 {
            varint(payload.len() as u64, &mut out);
        }
        out.extend_from_slice(payload);
        out
    }

    fn piece(text: &str, score: f32, kind: u8) -> Vec<u8> {
        let mut p = field(1, 2, text.as_bytes());
        p.extend(field(2, 5, &score.to_le_bytes()));
        p.extend(field(3, 0, &[kind]));
        field(1, 2, &p)
    }

    #[test]
    fn a_hand_built_unigram_model_tokenizes_as_t5_does() {
        let mut bytes = Vec::new();
        for (t, s, k) in [
            ("<pad>", 0.0, 3),
            ("</s>", 0.0, 3),
            ("<unk>", 0.0, 2),
            ("▁a", -1.0, 1),
            ("b", -2.0, 1),
            ("▁ab", -0.5, 1),
        ] {
            bytes.extend(piece(t, s, k));
        }
        bytes.extend(field(2, 2, &[(3 << 3), 1, (40 << 3) as u8 | 0x80, 0x02, 2]));
        let m = SentencePieceModel::parse(&bytes, Path::new("t.model")).unwrap();
        assert_eq!(m.pieces.len(), 6);
        assert_eq!((m.model_type, m.unk_id), (1, 2));
        let tok = m.to_tokenizer(Path::new("t.model")).unwrap();
        assert_eq!(tok.get_vocab_size(true), 6 + EXTRA_IDS);
        let ids = tok.encode("ab  a", true).unwrap().get_ids().to_vec();
        // "▁ab" beats "▁a"+"b"; the run of spaces becomes one "▁"; "</s>" is appended.
        assert_eq!(ids, [5, 3, 1]);
        assert_eq!(
            tok.token_to_id("<extra_id_0>"),
            Some(6 + EXTRA_IDS as u32 - 1)
        );
        let e = SentencePieceModel::parse(b"\xff\xff", Path::new("x.model"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.model"), "{e}");
    }
}
