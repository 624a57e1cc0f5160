//! The safetensors format, read one tensor at a time and written one tensor at a time, so that
//! neither side holds a second copy of a model: an 8-byte little-endian header length, a JSON
//! header (`{name: {dtype, shape, data_offsets}, "__metadata__": {…}}`), then the raw bytes.

use crate::error::{ModelError, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Where one tensor lies in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Element type as stored.
    pub kind: Kind,
    /// Shape.
    pub shape: Vec<i64>,
    /// Byte offset of the data from the start of the file.
    pub offset: u64,
    /// Bytes of data.
    pub len: u64,
}

/// An open safetensors file: its header, and the file to read tensors from.
#[derive(Debug)]
pub struct SafetensorsFile {
    path: PathBuf,
    file: File,
    entries: BTreeMap<String, Entry>,
}

fn bad(path: &Path, msg: impl Into<String>) -> ModelError {
    ModelError::Weights {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// The tch kind of a safetensors dtype name.
fn kind_of(dtype: &str) -> Option<Kind> {
    Some(match dtype {
        "F64" => Kind::Double,
        "F32" => Kind::Float,
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "I64" => Kind::Int64,
        "I32" => Kind::Int,
        "I16" => Kind::Int16,
        "I8" => Kind::Int8,
        "U8" => Kind::Uint8,
        "BOOL" => Kind::Bool,
        _ => return None,
    })
}

/// The safetensors dtype name of a tch kind.
fn dtype_of(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Double => "F64",
        Kind::Float => "F32",
        Kind::Half => "F16",
        Kind::BFloat16 => "BF16",
        Kind::Int64 => "I64",
        Kind::Int => "I32",
        Kind::Int16 => "I16",
        Kind::Int8 => "I8",
        Kind::Uint8 => "U8",
        Kind::Bool => "BOOL",
        _ => return None,
    })
}

impl SafetensorsFile {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<SafetensorsFile> {
        if !path.exists() {
            return Err(bad(path, "file does not exist"));
        }
        let file = File::open(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let size = file
            .metadata()
            .map_err(|source| ModelError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut len = [0u8; 8];
        file.read_exact_at(&mut len, 0)
            .map_err(|_| bad(path, "too short to be a safetensors file"))?;
        let header_len = u64::from_le_bytes(len);
        if header_len > size.saturating_sub(8) || header_len > 100 << 20 {
            return Err(bad(
                path,
                format!("header length {header_len} does not fit a {size}-byte file"),
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact_at(&mut header, 8)
            .map_err(|e| bad(path, format!("cannot read the header: {e}")))?;
        let header: BTreeMap<String, Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(path, format!("the header is not JSON: {e}")))?;
        let data_start = 8 + header_len;
        let mut entries = BTreeMap::new();
        for (name, v) in header {
            if name == "__metadata__" {
                continue;
            }
            let dtype = v["dtype"].as_str().unwrap_or_default();
            let kind = kind_of(dtype).ok_or_else(|| {
                bad(
                    path,
                    format!("tensor {name}: dtype {dtype:?} is not supported"),
                )
            })?;
            let shape: Vec<i64> = v["shape"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .ok_or_else(|| bad(path, format!("tensor {name}: no shape")))?;
            let offsets: Vec<u64> = v["data_offsets"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let [start, end] = offsets[..] else {
                return Err(bad(path, format!("tensor {name}: no data_offsets")));
            };
            let numel: i64 = shape.iter().product();
            let want = numel as u64 * kind.elt_size_in_bytes() as u64;
            if end < start || end - start != want || data_start + end > size {
                return Err(bad(
                    path,
                    format!(
                        "tensor {name}: data [{start}, {end}) does not hold {dtype} {shape:?} within the file"
                    ),
                ));
            }
            entries.insert(
                name,
                Entry {
                    kind,
                    shape,
                    offset: data_start + start,
                    len: want,
                },
            );
        }
        Ok(SafetensorsFile {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor's entry, by name.
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// Reads the tensor `name` as stored, into a new CPU tensor.
    pub fn read(&self, name: &str) -> Result<Tensor> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| bad(&self.path, format!("tensor {name}: not in the file")))?;
        let t = Tensor::empty(e.shape.as_slice(), (e.kind, tch::Device::Cpu));
        if e.len > 0 {
            // SAFETY: `t` is a new contiguous CPU tensor of exactly `e.len` bytes.
            let bytes =
                unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, e.len as usize) };
            self.file
                .read_exact_at(bytes, e.offset)
                .map_err(|err| bad(&self.path, format!("tensor {name}: {err}")))?;
        }
        Ok(t)
    }
}

/// Bytes `tensors` take as stored.
pub fn byte_size(tensors: &[(String, Tensor)]) -> u64 {
    tensors
        .iter()
        .map(|(_, t)| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
        .sum()
}

/// Writes `tensors` (CPU) as a safetensors file at `path` (not atomically: callers write to a
/// temporary name), one tensor at a time.
pub fn write(tensors: &[(String, Tensor)], path: &Path) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut offset = 0u64;
    for (name, t) in tensors {
        let dtype = dtype_of(t.kind()).ok_or_else(|| {
            bad(
                path,
                format!("tensor {name}: kind {:?} cannot be saved", t.kind()),
            )
        })?;
        let len = (t.numel() * t.kind().elt_size_in_bytes()) as u64;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.size(), "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut json =
        serde_json::to_vec(&Value::Object(header)).map_err(|e| bad(path, e.to_string()))?;
    // The data starts 8-byte aligned, as the reference writer pads it.
    while (json.len() % 8) != 0 {
        json.push(b' ');
    }
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut out = std::io::BufWriter::new(File::create(path).map_err(io)?);
    out.write_all(&(json.len() as u64).to_le_bytes())
        .map_err(io)?;
    out.write_all(&json).map_err(io)?;
    for (_, t) in tensors {
        let t = t.to_device(tch::Device::Cpu).contiguous();
        let len = t.numel() * t.kind().elt_size_in_bytes();
        if len > 0 {
            // SAFETY: `t` is contiguous on the CPU and holds exactly `len` bytes.
            let bytes = unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u8, len) };
            out.write_all(bytes).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind_and_matches_tchs_own_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        let tensors = vec![
            (
                "a".to_string(),
                Tensor::from_slice(&[1.5f32, -2.0, 3.25]).view([3, 1]),
            ),
            (
                "b".to_string(),
                Tensor::from_slice(&[1.0f32, 2.0]).to_kind(Kind::BFloat16),
            ),
            ("c".to_string(), Tensor::from_slice(&[7i64, 8, 9, 10])),
            (
                "empty".to_string(),
                Tensor::zeros([0, 4], (Kind::Float, tch::Device::Cpu)),
            ),
        ];
        write(&tensors, &path).unwrap();
        let f = SafetensorsFile::open(&path).unwrap();
        for (name, t) in &tensors {
            let back = f.read(name).unwrap();
            assert_eq!(back.kind(), t.kind(), "{name}");
            assert_eq!(back.size(), t.size(), "{name}");
            assert!(back.equal(t), "{name}");
        }
        // tch's reader (the safetensors crate) reads what we wrote.
        let theirs = Tensor::read_safetensors(&path).unwrap();
        assert_eq!(theirs.len(), tensors.len());
        let e = f.read("nope").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn a_truncated_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        write(
            &[(
                "a".into(),
                Tensor::ones([16], (Kind::Float, tch::Device::Cpu)),
            )],
            &path,
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        let e = SafetensorsFile::open(&path).unwrap_err().to_string();
        assert!(e.contains("t.safetensors") && e.contains("tensor a"), "{e}");
    }
}
