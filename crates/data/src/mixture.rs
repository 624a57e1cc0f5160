//! Weighted mixtures of datasets (big_vision's `{name: weight}`): each example of a batch picks
//! its dataset with probability proportional to the weights, from an RNG keyed by (seed, batch
//! number), so a resumed run draws exactly what an uninterrupted one would.

use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::loader::{Batch, Cursor, Loader};

/// One dataset of a mixture.
pub struct MixtureEntry {
    /// Name in logs and cursors.
    pub name: String,
    /// Its loader (its own format, prompt and shards).
    pub loader: Loader,
    /// Relative sampling weight (> 0).
    pub weight: f64,
}

/// Where a mixture stands: batches drawn and each dataset's cursor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MixtureCursor {
    /// Batches drawn so far.
    pub batches: u64,
    /// (dataset name, its loader's cursor).
    pub datasets: Vec<(String, Cursor)>,
}

/// Draws batches from several loaders by weight.
pub struct Mixture {
    entries: Vec<MixtureEntry>,
    pick: WeightedIndex<f64>,
    seed: u64,
    batches: u64,
}

impl Mixture {
    /// A mixture of `entries`; weights must be positive and finite.
    pub fn new(entries: Vec<MixtureEntry>, seed: u64) -> Result<Mixture> {
        if entries.is_empty() {
            return Err(DataError::config("mixture", "needs at least one dataset"));
        }
        if let Some(e) = entries
            .iter()
            .find(|e| !(e.weight > 0.0 && e.weight.is_finite()))
        {
            return Err(DataError::config(
                "mixture",
                format!(
                    "dataset {:?} has weight {}, which must be positive",
                    e.name, e.weight
                ),
            ));
        }
        // A batch is one pixel tensor: every dataset must give the same frames per sample.
        if let Some(e) = entries
            .iter()
            .find(|e| e.loader.frames() != entries[0].loader.frames())
        {
            return Err(DataError::config(
                "mixture",
                format!(
                    "dataset {:?} gives {} frame(s) per sample but {:?} gives {}; a batch holds one \
                     frame count, so mix video sources with the same `frames` and train images \
                     in another stage",
                    e.name,
                    e.loader.frames(),
                    entries[0].name,
                    entries[0].loader.frames()
                ),
            ));
        }
        let pick = WeightedIndex::new(entries.iter().map(|e| e.weight))
            .map_err(|e| DataError::config("mixture", e.to_string()))?;
        Ok(Mixture {
            entries,
            pick,
            seed,
            batches: 0,
        })
    }

    /// How many of `n` examples come from each dataset in the next batch.
    fn counts(&self, n: usize) -> Vec<usize> {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&self.batches.to_le_bytes());
        key[16..24].copy_from_slice(b"mixture!");
        let mut rng = ChaCha8Rng::from_seed(key);
        let mut counts = vec![0; self.entries.len()];
        for _ in 0..n {
            counts[self.pick.sample(&mut rng)] += 1;
        }
        counts
    }

    /// The next batch of `n` examples, datasets in mixture order within it.
    pub fn next_batch(&mut self, n: usize) -> Result<Batch> {
        let counts = self.counts(n);
        let mut out: Option<Batch> = None;
        for (entry, &k) in self.entries.iter_mut().zip(&counts) {
            if k == 0 {
                continue;
            }
            let b = entry.loader.next_batch_of(k)?;
            match &mut out {
                None => out = Some(b),
                Some(acc) => acc.append(b)?,
            }
        }
        self.batches += 1;
        out.ok_or_else(|| DataError::config("batch_size", "must be positive"))
    }

    /// The position to save in a checkpoint.
    pub fn cursor(&self) -> MixtureCursor {
        MixtureCursor {
            batches: self.batches,
            datasets: self
                .entries
                .iter()
                .map(|e| (e.name.clone(), e.loader.cursor()))
                .collect(),
        }
    }

    /// Resumes at `c`; every dataset named in the mixture must be in it.
    pub fn seek(&mut self, c: &MixtureCursor) -> Result<()> {
        for e in &mut self.entries {
            let (_, cur) = c
                .datasets
                .iter()
                .find(|(n, _)| *n == e.name)
                .ok_or_else(|| {
                    DataError::config(
                        "mixture",
                        format!(
                            "the saved position has no dataset {:?} (it has {:?})",
                            e.name,
                            c.datasets.iter().map(|d| &d.0).collect::<Vec<_>>()
                        ),
                    )
                })?;
            e.loader.seek(cur)?;
        }
        self.batches = c.batches;
        Ok(())
    }

    /// Resumes from the positions that another number of ranks saved (in rank order).
    pub fn seek_resharded(&mut self, cursors: &[MixtureCursor]) -> Result<()> {
        for e in &mut self.entries {
            let per_rank = cursors
                .iter()
                .map(|c| {
                    c.datasets
                        .iter()
                        .find(|(n, _)| *n == e.name)
                        .map(|(_, cur)| cur.clone())
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    DataError::config(
                        "mixture",
                        format!("a saved position has no dataset {:?}", e.name),
                    )
                })?;
            e.loader.seek_resharded(&per_rank)?;
        }
        self.batches = cursors.first().map_or(0, |c| c.batches);
        Ok(())
    }

    /// Dataset names and weights.
    pub fn describe(&self) -> Vec<(String, f64)> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.weight))
            .collect()
    }
}

impl Batch {
    /// Appends `other`'s samples after this batch's; both must have the same image size, frames
    /// per sample and text lengths (an empty batch takes `other`'s).
    pub fn append(&mut self, other: Batch) -> Result<()> {
        if self.size == 0 && self.pixels.is_empty() {
            *self = Batch {
                skipped: self.skipped + other.skipped,
                ..other
            };
            return Ok(());
        }
        let shape = |b: &Batch| (b.image_size, b.frames, b.text_len, b.target_len);
        if shape(self) != shape(&other) {
            return Err(DataError::config(
                "batch",
                format!(
                    "cannot append a batch of (image size, frames, text length, target length) \
                     {:?} to one of {:?}",
                    shape(&other),
                    shape(self)
                ),
            ));
        }
        self.size += other.size;
        self.pixels.extend(other.pixels);
        self.input_ids.extend(other.input_ids);
        self.target_ids.extend(other.target_ids);
        self.ids.extend(other.ids);
        self.texts.extend(other.texts);
        self.targets.extend(other.targets);
        self.references.extend(other.references);
        self.target_boxes.extend(other.target_boxes);
        for (k, v) in other.labels {
            self.labels.entry(k).or_default().extend(v);
        }
        self.skipped += other.skipped;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{LoaderConfig, RowFormat};
    use crate::synth::{write_shapes_tasks, ShapesConfig};
    use crate::{prompts, DataSpec, TextTokenizer};
    use std::sync::Arc;

    fn mixture(dir: &std::path::Path, tok: &Arc<TextTokenizer>, weights: [f64; 2]) -> Mixture {
        let entry = |task: &str, format: RowFormat, weight: f64| {
            let lc = LoaderConfig {
                shards: crate::resolve_shards(
                    &format!("{}/{task}", dir.display()),
                    std::path::Path::new("."),
                )
                .unwrap(),
                spec: DataSpec::embedded(task).unwrap(),
                tokenizer: tok.clone(),
                image_size: 16,
                text_len: 12,
                batch_size: 4,
                seed: 1,
                shuffle: true,
                label_columns: vec![],
                threads: 1,
            };
            MixtureEntry {
                name: task.into(),
                loader: Loader::new_task(lc, format, 6, 0, 1).unwrap(),
                weight,
            }
        };
        Mixture::new(
            vec![
                entry(
                    "caption",
                    RowFormat::Caption {
                        prompt: prompts::CAPTION.into(),
                    },
                    weights[0],
                ),
                entry(
                    "vqa",
                    RowFormat::Vqa {
                        prompt: prompts::ANSWER.into(),
                    },
                    weights[1],
                ),
            ],
            9,
        )
        .unwrap()
    }

    #[test]
    fn weights_shape_the_draws_and_resume_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ShapesConfig {
            rows: 40,
            image_size: 16,
            max_objects: 1,
            rows_per_shard: 40,
            rows_per_group: 10,
            seed: 2,
        };
        let s = write_shapes_tasks(dir.path(), &cfg).unwrap();
        let tok = Arc::new(
            TextTokenizer::train(&s.texts, 128)
                .unwrap()
                .with_loc_tokens(),
        );
        let mut m = mixture(dir.path(), &tok, [3.0, 1.0]);
        let mut captions = 0;
        for _ in 0..20 {
            let b = m.next_batch(10).unwrap();
            assert_eq!(b.size, 10);
            assert_eq!(b.target_ids.len(), 10 * 6);
            captions += b.texts.iter().filter(|t| t.starts_with("caption")).count();
        }
        // 200 draws at 3:1 — far from 50%, near 75%.
        assert!((120..180).contains(&captions), "{captions}");
        // Interrupt after 7 batches, resume in a fresh mixture: the same ids follow.
        let mut a = mixture(dir.path(), &tok, [1.0, 1.0]);
        for _ in 0..7 {
            a.next_batch(5).unwrap();
        }
        let saved = a.cursor();
        let want: Vec<Vec<String>> = (0..5).map(|_| a.next_batch(5).unwrap().ids).collect();
        let mut b = mixture(dir.path(), &tok, [1.0, 1.0]);
        b.seek(&saved).unwrap();
        let got: Vec<Vec<String>> = (0..5).map(|_| b.next_batch(5).unwrap().ids).collect();
        assert_eq!(got, want);
        assert!(Mixture::new(vec![], 0).is_err());
    }
}
