//! Reading the `refs(unc).p` / `refs(umd).p` / `refs(google).p` pickles of RefCOCO, RefCOCO+ and
//! RefCOCOg: a list of dicts, written by Python 2 (byte strings) or re-saved by Python 3.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::Path;

use serde_pickle::{DeOptions, HashableValue, Value};

use super::skips::entry_error;
use crate::error::{DataError, Result};

/// One referred object and its expressions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ref {
    pub ref_id: i64,
    pub ann_id: i64,
    pub image_id: i64,
    pub split: String,
    pub sentences: Vec<Sentence>,
}

/// One referring expression of a ref.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sentence {
    pub sent_id: i64,
    /// Lower-cased, tokenised text (`sent`).
    pub sent: String,
    /// The text as typed (`raw`).
    pub raw: String,
}

/// Reads every ref; a malformed one becomes an entry error in its place.
pub(crate) fn read_refs(path: &Path) -> Result<Vec<Result<Ref>>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    // Python 2 strings stay bytes here and are decoded below, as Python 3 does with latin1.
    let value = serde_pickle::value_from_reader(BufReader::new(file), DeOptions::new())
        .map_err(|e| invalid(path, format!("not a readable pickle: {e}")))?;
    let Value::List(items) = value else {
        return Err(invalid(
            path,
            format!("holds {}, not a list of refs", kind(&value)),
        ));
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            parse_ref(v).map_err(|m| {
                let id = dict(v)
                    .ok()
                    .and_then(|d| int(d, "ref_id").ok())
                    .map(|id| format!(" (ref_id {id})"))
                    .unwrap_or_default();
                entry_error(path, format!("refs[{i}]{id}"), m)
            })
        })
        .collect())
}

fn invalid(path: &Path, message: String) -> DataError {
    DataError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    )
}

type Dict = BTreeMap<HashableValue, Value>;

fn parse_ref(v: &Value) -> std::result::Result<Ref, String> {
    let d = dict(v)?;
    let sentences = match get(d, "sentences")? {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .enumerate()
            .map(|(i, s)| parse_sentence(s).map_err(|m| format!("sentences[{i}]: {m}")))
            .collect::<std::result::Result<Vec<_>, _>>()?,
        other => return Err(format!("sentences is {}, not a list", kind(other))),
    };
    Ok(Ref {
        ref_id: int(d, "ref_id")?,
        ann_id: int(d, "ann_id")?,
        image_id: int(d, "image_id")?,
        split: text(d, "split")?,
        sentences,
    })
}

fn parse_sentence(v: &Value) -> std::result::Result<Sentence, String> {
    let d = dict(v)?;
    Ok(Sentence {
        sent_id: int(d, "sent_id")?,
        sent: text(d, "sent")?,
        raw: text(d, "raw")?,
    })
}

fn dict(v: &Value) -> std::result::Result<&Dict, String> {
    match v {
        Value::Dict(d) => Ok(d),
        other => Err(format!("is {}, not a dict", kind(other))),
    }
}

fn get<'a>(d: &'a Dict, key: &str) -> std::result::Result<&'a Value, String> {
    // Python 2 pickles key dicts by byte strings, Python 3 by str.
    d.get(&HashableValue::String(key.to_string()))
        .or_else(|| d.get(&HashableValue::Bytes(key.as_bytes().to_vec())))
        .ok_or_else(|| format!("has no key {key:?}"))
}

fn int(d: &Dict, key: &str) -> std::result::Result<i64, String> {
    match get(d, key)? {
        Value::I64(n) => Ok(*n),
        Value::Int(n) => i64::try_from(n).map_err(|_| format!("{key} {n} is out of range")),
        other => Err(format!("{key} is {}, not an integer", kind(other))),
    }
}

fn text(d: &Dict, key: &str) -> std::result::Result<String, String> {
    match get(d, key)? {
        Value::String(s) => Ok(s.clone()),
        Value::Bytes(b) => Ok(decode_py2(b)),
        other => Err(format!("{key} is {}, not a string", kind(other))),
    }
}

/// A Python 2 byte string: UTF-8 when valid, else Latin-1 (what `pickle.load(f,
/// encoding="latin1")` gives).
fn decode_py2(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::I64(_) | Value::Int(_) => "an integer",
        Value::F64(_) => "a float",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Set(_) | Value::FrozenSet(_) => "a set",
        Value::Dict(_) => "a dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python2_strings_decode_as_utf8_or_latin1() {
        assert_eq!(decode_py2(b"plain"), "plain");
        assert_eq!(decode_py2("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(decode_py2(b"caf\xe9"), "caf\u{e9}");
    }

    #[test]
    fn keys_may_be_bytes_or_str_and_ints_big() {
        let mut d = Dict::new();
        d.insert(HashableValue::Bytes(b"ref_id".to_vec()), Value::I64(7));
        d.insert(
            HashableValue::String("ann_id".into()),
            Value::Int(12345u64.into()),
        );
        d.insert(
            HashableValue::String("split".into()),
            Value::Bytes(b"val".to_vec()),
        );
        assert_eq!(int(&d, "ref_id"), Ok(7));
        assert_eq!(int(&d, "ann_id"), Ok(12345));
        assert_eq!(text(&d, "split").as_deref(), Ok("val"));
        assert_eq!(
            int(&d, "split"),
            Err("split is bytes, not an integer".into())
        );
        assert_eq!(int(&d, "nope"), Err("has no key \"nope\"".into()));
    }
}
