//! Shards in object storage — `s3://bucket/prefix/*.parquet`, `gs://bucket/…`, `https://host/…`
//! — read through the `object_store` crate with parquet's async reader on a small tokio
//! runtime. A remote shard is named by its URL wherever a shard path goes, so rank splitting,
//! shuffling and exact resume are the local ones. The next row groups a loader will read are
//! fetched ahead ([`RemoteFile::prefetch`]) while the current one is decoded.
//!
//! Credentials come from the provider's standard environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`; `GOOGLE_APPLICATION_CREDENTIALS`, …) and, for S3 without keys in the
//! environment, the `~/.aws/credentials` and `~/.aws/config` profile (`AWS_PROFILE`, default
//! `default`).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use tokio::task::JoinHandle;

use crate::error::{DataError, Result};

/// URL schemes read from object storage.
const SCHEMES: [&str; 4] = ["s3://", "gs://", "https://", "http://"];

/// Row groups fetched at most ahead, over all remote shards (older fetches are dropped).
const MAX_AHEAD: usize = 16;

/// Whether `shard` names an object in storage rather than a local file.
pub fn is_remote(shard: &str) -> bool {
    SCHEMES.iter().any(|s| shard.starts_with(s))
}

/// Row groups a loader fetches ahead of the one it reads: `PALISADE_READAHEAD`, default 2.
pub fn readahead() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("PALISADE_READAHEAD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2)
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("palisade-io")
            .enable_all()
            .build()
            .expect("the I/O runtime starts")
    })
}

fn remote_err(url: &str, message: impl std::fmt::Display) -> DataError {
    DataError::Remote {
        url: url.to_string(),
        message: message.to_string(),
    }
}

/// `scheme://host/key` → (scheme with `://`, host, key).
fn split(url: &str) -> Result<(&str, &str, &str)> {
    let scheme = SCHEMES
        .iter()
        .find(|s| url.starts_with(*s))
        .ok_or_else(|| remote_err(url, "not an object-store URL"))?;
    let rest = &url[scheme.len()..];
    let (host, key) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(remote_err(url, "names no bucket or host"));
    }
    Ok((scheme, host, key))
}

/// The store of one bucket (or HTTP origin), built once per process.
fn store(url: &str) -> Result<Arc<dyn ObjectStore>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let (scheme, host, _) = split(url)?;
    let id = format!("{scheme}{host}");
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("store cache");
    if let Some(s) = stores.get(&id) {
        return Ok(s.clone());
    }
    let built: Arc<dyn ObjectStore> = match scheme {
        "s3://" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env();
            for (k, v) in aws_profile() {
                b = b.with_config(k, v);
            }
            Arc::new(
                b.with_bucket_name(host)
                    .build()
                    .map_err(|e| remote_err(&id, e))?,
            )
        }
        "gs://" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(host)
                .build()
                .map_err(|e| remote_err(&id, e))?,
        ),
        _ => Arc::new(
            object_store::http::HttpBuilder::new()
                .with_url(&id)
                .build()
                .map_err(|e| remote_err(&id, e))?,
        ),
    };
    stores.insert(id, built.clone());
    Ok(built)
}

/// S3 settings from `~/.aws/credentials` and `~/.aws/config` when the environment has no keys
/// (object_store reads only the environment).
fn aws_profile() -> Vec<(object_store::aws::AmazonS3ConfigKey, String)> {
    use object_store::aws::AmazonS3ConfigKey as K;
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return Vec::new();
    }
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        return Vec::new();
    };
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let mut out = Vec::new();
    let files = [
        (home.join(".aws/credentials"), profile.clone()),
        (home.join(".aws/config"), format!("profile {profile}")),
        (home.join(".aws/config"), profile.clone()),
    ];
    for (file, section) in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (key, value) in ini_section(&text, &section) {
            let k = match key.as_str() {
                "aws_access_key_id" => K::AccessKeyId,
                "aws_secret_access_key" => K::SecretAccessKey,
                "aws_session_token" => K::Token,
                "region" if std::env::var_os("AWS_REGION").is_none() => K::Region,
                "endpoint_url" if std::env::var_os("AWS_ENDPOINT_URL").is_none() => K::Endpoint,
                _ => continue,
            };
            out.push((k, value));
        }
    }
    out
}

/// `key = value` lines of `[section]` in an INI file.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// The objects a pattern names: a glob over keys (`*`, `?`, `[…]` within the key), a prefix
/// ending in `/` (every `*.parquet` under it), or one object. Sorted; an error names the
/// pattern when nothing matches, the bucket is missing or the credentials fail.
pub fn resolve(pattern: &str) -> Result<Vec<PathBuf>> {
    let (scheme, host, key) = split(pattern)?;
    let store = store(pattern)?;
    let key_glob = if key.is_empty() || key.ends_with('/') {
        format!("{key}*.parquet")
    } else {
        key.to_string()
    };
    let base = format!("{scheme}{host}");
    if !key_glob.contains(['*', '?', '[']) {
        let location = ObjectPath::from(key_glob.as_str());
        runtime()
            .block_on(store.head(&location))
            .map_err(|e| remote_err(pattern, e))?;
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let glob = glob::Pattern::new(&key_glob)
        .map_err(|e| remote_err(pattern, format!("invalid glob: {e}")))?;
    // List only under the part of the key before the first wildcard.
    let fixed = &key_glob[..key_glob.find(['*', '?', '[']).unwrap_or(key_glob.len())];
    let prefix = fixed.rfind('/').map(|i| &fixed[..i]);
    let listed: Vec<object_store::ObjectMeta> = runtime()
        .block_on(
            store
                .list(prefix.map(ObjectPath::from).as_ref())
                .try_collect(),
        )
        .map_err(|e| remote_err(pattern, e))?;
    let opts = glob::MatchOptions {
        require_literal_separator: true,
        ..Default::default()
    };
    let mut sizes = listed_sizes().lock().expect("listed sizes");
    let mut found: Vec<PathBuf> = listed
        .iter()
        .filter(|m| glob.matches_with(m.location.as_ref(), opts))
        .map(|m| {
            let url = format!("{base}/{}", m.location);
            sizes.insert(url.clone(), m.size);
            PathBuf::from(url)
        })
        .collect();
    drop(sizes);
    found.sort();
    if found.is_empty() {
        return Err(DataError::Pattern {
            pattern: pattern.to_string(),
            message: format!(
                "matches no objects ({} listed under {base}/{})",
                listed.len(),
                prefix.unwrap_or("")
            ),
        });
    }
    Ok(found)
}

/// Object sizes seen in listings, so opening a listed shard needs no HEAD request of its own.
fn listed_sizes() -> &'static Mutex<HashMap<String, u64>> {
    static SIZES: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    SIZES.get_or_init(Default::default)
}

/// Which row group of which file, projected how: the key of a fetch.
type FetchKey = (String, usize, Vec<usize>);
type Fetch = JoinHandle<std::result::Result<Vec<RecordBatch>, String>>;

fn ahead() -> &'static Mutex<VecDeque<(FetchKey, Fetch)>> {
    static AHEAD: OnceLock<Mutex<VecDeque<(FetchKey, Fetch)>>> = OnceLock::new();
    AHEAD.get_or_init(Default::default)
}

/// One Parquet object: its store, location and size.
#[derive(Debug, Clone)]
pub(crate) struct RemoteFile {
    url: String,
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    size: u64,
}

impl RemoteFile {
    /// The object and its size (from the listing that found it, else a HEAD request); a
    /// missing one is an error naming it.
    pub(crate) fn open(url: &str) -> Result<RemoteFile> {
        let (_, _, key) = split(url)?;
        let store = store(url)?;
        let location = ObjectPath::from(key);
        let listed = listed_sizes()
            .lock()
            .expect("listed sizes")
            .get(url)
            .copied();
        let size = match listed {
            Some(size) => size,
            None => {
                runtime()
                    .block_on(store.head(&location))
                    .map_err(|e| remote_err(url, e))?
                    .size
            }
        };
        Ok(RemoteFile {
            url: url.to_string(),
            store,
            location,
            size,
        })
    }

    fn reader(&self) -> ObjectReader {
        ObjectReader(self.clone())
    }

    /// The object's Parquet footer.
    pub(crate) fn metadata(&self) -> Result<ArrowReaderMetadata> {
        let mut reader = self.reader();
        runtime()
            .block_on(ArrowReaderMetadata::load_async(
                &mut reader,
                ArrowReaderOptions::new(),
            ))
            .map_err(|source| DataError::Parquet {
                file: PathBuf::from(&self.url),
                source,
            })
    }

    fn spawn(&self, meta: ArrowReaderMetadata, rg: usize, roots: Vec<usize>, rows: usize) -> Fetch {
        let reader = self.reader();
        runtime().spawn(async move {
            let mask = ProjectionMask::roots(meta.parquet_schema(), roots);
            ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
                .with_row_groups(vec![rg])
                .with_projection(mask)
                .with_batch_size(rows)
                .build()
                .map_err(|e| e.to_string())?
                .try_collect()
                .await
                .map_err(|e| e.to_string())
        })
    }

    /// Starts fetching row group `rg`'s columns `roots` in the background, unless it is already.
    pub(crate) fn prefetch(
        &self,
        meta: &ArrowReaderMetadata,
        rg: usize,
        roots: &[usize],
        rows: usize,
    ) {
        let key = (self.url.clone(), rg, roots.to_vec());
        let mut ahead = ahead().lock().expect("read-ahead queue");
        if ahead.iter().any(|(k, _)| *k == key) {
            return;
        }
        if ahead.len() >= MAX_AHEAD {
            if let Some((_, old)) = ahead.pop_front() {
                old.abort();
            }
        }
        let fetch = self.spawn(meta.clone(), rg, roots.to_vec(), rows);
        ahead.push_back((key, fetch));
    }

    /// Row group `rg`'s columns `roots`: the fetch started ahead, or one started now.
    pub(crate) fn read_row_group(
        &self,
        meta: &ArrowReaderMetadata,
        rg: usize,
        roots: &[usize],
        rows: usize,
    ) -> std::result::Result<Vec<RecordBatch>, String> {
        let key = (self.url.clone(), rg, roots.to_vec());
        let started = {
            let mut ahead = ahead().lock().expect("read-ahead queue");
            let i = ahead.iter().position(|(k, _)| *k == key);
            i.and_then(|i| ahead.remove(i)).map(|(_, f)| f)
        };
        let fetch = started.unwrap_or_else(|| self.spawn(meta.clone(), rg, roots.to_vec(), rows));
        runtime()
            .block_on(fetch)
            .map_err(|e| format!("{}: the fetch stopped: {e}", self.url))?
            .map_err(|e| format!("{}: {e}", self.url))
    }
}

/// parquet's async reader over one object: ranged GETs (coalesced by object_store) and the
/// footer from the known size.
struct ObjectReader(RemoteFile);

fn parquet_err(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        use futures::{FutureExt, TryFutureExt};
        self.0
            .store
            .get_range(&self.0.location, range)
            .map_err(parquet_err)
            .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        use futures::FutureExt;
        async move {
            self.0
                .store
                .get_ranges(&self.0.location, &ranges)
                .await
                .map_err(parquet_err)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        use futures::FutureExt;
        async move {
            let size = self.0.size;
            let meta = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_profiles_parse() {
        assert!(is_remote("s3://b/k.parquet") && !is_remote("data/train/*.parquet"));
        assert_eq!(
            split("s3://bkt/a/b.parquet").unwrap(),
            ("s3://", "bkt", "a/b.parquet")
        );
        assert_eq!(split("https://h:9/x").unwrap(), ("https://", "h:9", "x"));
        assert!(split("s3:///x")
            .unwrap_err()
            .to_string()
            .contains("no bucket"));
        let ini = "[default]\naws_access_key_id = A\n[profile dev]\nregion = eu-west-1\n";
        assert_eq!(
            ini_section(ini, "default"),
            [("aws_access_key_id".into(), "A".into())]
        );
        assert_eq!(
            ini_section(ini, "profile dev"),
            [("region".into(), "eu-west-1".into())]
        );
    }
}
