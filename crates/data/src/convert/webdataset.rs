//! webdataset tar shards to `webli` shards: consecutive members sharing a key (`0001.jpg`,
//! `0001.txt`, `0001.json`) form one sample; the image keeps its bytes, `.txt` is the text, and
//! `.json` may supply `lang` (or the text as `caption`/`text` when there is no `.txt`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::image_file::check_image_bytes;
use super::schemas::WebliRow;
use super::skips::{entry_error, Skips};
use super::writer::DatasetWriter;
use super::{ConvertConfig, ConvertSummary};
use crate::error::{DataError, Result};

/// Inputs of [`convert_webdataset`].
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WebdatasetSource {
    /// Uncompressed `.tar` shards, read in this order.
    #[arg(required = true)]
    pub tars: Vec<PathBuf>,
    /// Language for samples whose `.json` names none.
    #[arg(long, default_value = "en")]
    pub lang: String,
}

/// The members of one sample, gathered while reading.
#[derive(Default)]
struct Sample {
    key: String,
    image: Option<(String, Vec<u8>)>,
    text: Option<Vec<u8>>,
    json: Option<Vec<u8>>,
    /// Set when the sample is already known to be malformed.
    problem: Option<String>,
}

/// Converts webdataset tars to `webli` shards.
pub fn convert_webdataset(src: &WebdatasetSource, cfg: &ConvertConfig) -> Result<ConvertSummary> {
    let first = src
        .tars
        .first()
        .ok_or_else(|| DataError::config("tars", "no tar files given"))?;
    let mut writer = DatasetWriter::<WebliRow>::new(cfg)?;
    let mut skips = Skips::new(cfg.skip_missing);
    for tar in &src.tars {
        convert_tar(tar, &src.lang, &mut writer, &mut skips)?;
    }
    let rows = writer.rows();
    let shards = writer.finish(first)?;
    Ok(skips.summary(shards, rows))
}

fn convert_tar(
    path: &Path,
    lang: &str,
    writer: &mut DatasetWriter<WebliRow>,
    skips: &mut Skips,
) -> Result<()> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| DataError::io(path, e))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        return Err(invalid(
            path,
            "is gzip-compressed; only plain tar is read (gunzip it first)".into(),
        ));
    }
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let entries = archive
        .entries()
        .map_err(|e| invalid(path, format!("not a tar archive: {e}")))?;
    let mut current = Sample::default();
    for entry in entries {
        let after = || match current.key.as_str() {
            "" => "at the first member".to_string(),
            key => format!("after sample {key:?}"),
        };
        let mut entry = entry.map_err(|e| invalid(path, format!("{}: {e}", after())))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| invalid(path, format!("{}: member name: {e}", after())))?
            .to_string_lossy()
            .into_owned();
        let Some((key, ext)) = split_key(&name) else {
            tracing::debug!(tar = %path.display(), member = name, "no extension, ignored");
            continue;
        };
        // The header's size is untrusted: reserve at most 64 MiB up front.
        let reserve = usize::try_from(entry.size()).map_or(0, |n| n.min(64 << 20));
        let mut bytes = Vec::with_capacity(reserve);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| invalid(path, format!("member {name}: {e}")))?;
        if key != current.key {
            let done = std::mem::take(&mut current);
            finish_sample(done, path, lang, writer, skips)?;
            current.key = key.to_string();
        }
        add_member(&mut current, &name, &ext.to_ascii_lowercase(), bytes);
    }
    finish_sample(current, path, lang, writer, skips)
}

fn invalid(path: &Path, message: String) -> DataError {
    DataError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, message),
    )
}

/// webdataset's rule: the key is the path up to the first dot of the file name.
fn split_key(name: &str) -> Option<(&str, &str)> {
    let start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[start..].find('.')? + start;
    let (key, ext) = (&name[..dot], &name[dot + 1..]);
    (dot > start && !ext.is_empty()).then_some((key, ext))
}

fn add_member(sample: &mut Sample, name: &str, ext: &str, bytes: Vec<u8>) {
    match ext {
        "jpg" | "jpeg" | "png" | "webp" => {
            if let Some((other, _)) = &sample.image {
                sample.problem = Some(format!("has two images, {other} and {name}"));
            }
            sample.image = Some((name.to_string(), bytes));
        }
        "txt" => sample.text = Some(bytes),
        "json" => sample.json = Some(bytes),
        _ => {}
    }
}

fn finish_sample(
    sample: Sample,
    tar: &Path,
    lang: &str,
    writer: &mut DatasetWriter<WebliRow>,
    skips: &mut Skips,
) -> Result<()> {
    if sample.key.is_empty() {
        return Ok(());
    }
    let key = sample.key.clone();
    let row = to_row(sample, lang).map_err(|m| entry_error(tar, format!("sample {key:?}"), m));
    if let Some(row) = skips.handle(row)? {
        writer.push(row)?;
    }
    Ok(())
}

fn to_row(sample: Sample, lang: &str) -> std::result::Result<WebliRow, String> {
    if let Some(problem) = sample.problem {
        return Err(problem);
    }
    let (name, image) = sample
        .image
        .ok_or("has no .jpg, .jpeg, .png or .webp member")?;
    check_image_bytes(&image).map_err(|m| format!("{name} {m}"))?;
    let json = match &sample.json {
        Some(bytes) => Some(
            serde_json::from_slice::<serde_json::Value>(bytes)
                .map_err(|e| format!("{}.json: {e}", sample.key))?,
        ),
        None => None,
    };
    let json_str = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| json.as_ref()?.get(k)?.as_str().map(str::to_string))
    };
    let text = match sample.text {
        Some(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("{}.txt is not UTF-8", sample.key))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => json_str(&["caption", "text"])
            .ok_or("has no .txt member and its .json has no caption or text")?,
    };
    Ok(WebliRow {
        image,
        text,
        lang: json_str(&["lang", "language"]).unwrap_or_else(|| lang.to_string()),
        id: sample.key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_path_up_to_first_dot_of_file_name() {
        assert_eq!(
            split_key("a/b.c/0001.seg.png"),
            Some(("a/b.c/0001", "seg.png"))
        );
        assert_eq!(split_key("0001.jpg"), Some(("0001", "jpg")));
        assert_eq!(split_key("README"), None);
        assert_eq!(split_key("dir/.hidden"), None);
        assert_eq!(split_key("x."), None);
    }
}
