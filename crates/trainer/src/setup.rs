//! Shared start-up for training, evaluation and benchmarks: device and threads, synthetic data
//! when the config asks for it, the tokenizer, loaders and the model.

use crate::config::{ExperimentConfig, Stage, SynthKind};
use crate::error::{Result, TrainerError};
use palisade_data::{DataSpec, Loader, LoaderConfig, ShapesConfig, TextTokenizer};
use palisade_model::{SiglipConfig, SiglipModel};
use std::path::Path;
use std::sync::Arc;
use tch::Device;

/// The libtorch device named by `device` (`cpu`, `cuda`, `cuda:N`); `cuda` picks `local_rank`.
pub fn parse_device(device: &str, local_rank: usize) -> Result<Device> {
    let d = match device {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Device::Cuda(local_rank),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::Cuda(n),
            None => {
                return Err(TrainerError::Config(format!(
                    "key device: {other:?} is not cpu, cuda or cuda:N"
                )))
            }
        },
    };
    if !tch::Cuda::is_available() {
        return Err(TrainerError::Config(format!(
            "key device: {device} was asked for but libtorch sees no CUDA device"
        )));
    }
    Ok(d)
}

/// Sets libtorch's intra-op threads (0: every core).
pub fn set_threads(threads: usize) {
    let n = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    };
    tch::set_num_threads(n as i32);
}

/// Generates the synthetic data named in `data.synth` unless it is already there: shapes
/// scenes for stage `siglip`, their caption/VQA/refcoco task shards for stage `pali`.
pub fn ensure_synth_data(cfg: &ExperimentConfig) -> Result<()> {
    let Some(s) = &cfg.data.synth else {
        return Ok(());
    };
    let splits = [
        (&s.train_dir, s.train_rows, cfg.seed),
        (&s.eval_dir, s.eval_rows, cfg.seed.wrapping_add(1_000_003)),
    ];
    let mut texts = Vec::new();
    for (dir, rows, seed) in splits {
        let shapes = ShapesConfig {
            rows,
            image_size: s.image_size,
            max_objects: s.max_objects,
            seed,
            ..Default::default()
        };
        match (cfg.stage, s.kind) {
            (Stage::Siglip, SynthKind::Video) => {
                return Err(TrainerError::Config(
                    "key data.synth.kind: video clips are for stage pali (captioning and VQA)"
                        .into(),
                ))
            }
            (Stage::Pali, SynthKind::Video) if !has_parquet(&dir.join("caption")) => {
                tracing::info!(
                    "generating {rows} synthetic video clips into {}",
                    dir.display()
                );
                let video = palisade_data::VideoConfig {
                    clips: rows,
                    frames: s.clip_frames,
                    image_size: s.image_size,
                    max_objects: s.max_objects,
                    seed,
                    ..Default::default()
                };
                texts.extend(palisade_data::write_video_tasks(dir, &video)?.texts);
            }
            (Stage::Siglip, _) if !has_parquet(dir) => {
                tracing::info!("generating {rows} synthetic scenes into {}", dir.display());
                palisade_data::write_shapes(dir, &shapes)?;
            }
            (Stage::Pali, SynthKind::Scenes) if !has_parquet(&dir.join("caption")) => {
                tracing::info!(
                    "generating task shards of {rows} synthetic scenes into {}",
                    dir.display()
                );
                texts.extend(palisade_data::write_shapes_tasks(dir, &shapes)?.texts);
            }
            _ => {}
        }
    }
    if !cfg.data.tokenizer.exists() {
        tracing::info!(
            "training a {}-token tokenizer into {}",
            s.vocab_size,
            cfg.data.tokenizer.display()
        );
        match cfg.stage {
            Stage::Siglip => {
                let train = cfg.data.train.as_deref().ok_or_else(|| {
                    TrainerError::Config(
                        "key data.synth: needs data.train to train the tokenizer on".into(),
                    )
                })?;
                let shards = palisade_data::resolve_shards(train, Path::new("."))?;
                palisade_data::train_tokenizer_for(&shards, s.vocab_size, &cfg.data.tokenizer)?;
            }
            Stage::Pali => {
                if texts.is_empty() {
                    return Err(TrainerError::Config(format!(
                        "key data.tokenizer: {} is missing but the task shards exist; delete them to regenerate both",
                        cfg.data.tokenizer.display()
                    )));
                }
                palisade_data::TextTokenizer::train(&texts, s.vocab_size)?
                    .with_loc_tokens()
                    .save(&cfg.data.tokenizer)?;
            }
        }
    }
    Ok(())
}

fn has_parquet(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        })
        .unwrap_or(false)
}

/// Loads the tokenizer named in `data.tokenizer`.
pub fn tokenizer(cfg: &ExperimentConfig) -> Result<Arc<TextTokenizer>> {
    Ok(Arc::new(TextTokenizer::load(&cfg.data.tokenizer)?))
}

/// The data spec named in `data.spec`.
pub fn data_spec(cfg: &ExperimentConfig) -> Result<DataSpec> {
    spec_named(&cfg.data.spec)
}

/// A data spec by name: a built-in name or a YAML path.
pub fn spec_named(s: &str) -> Result<DataSpec> {
    Ok(if s.ends_with(".yaml") || s.ends_with(".yml") {
        DataSpec::load(Path::new(s))?
    } else {
        DataSpec::embedded(s)?
    })
}

/// The model config the experiment describes (vocabulary from the tokenizer unless set).
pub fn model_config(cfg: &ExperimentConfig, vocab: usize) -> Result<SiglipConfig> {
    let text = cfg.model.text.as_ref().ok_or_else(|| {
        TrainerError::Config("key model.text: the SigLIP text tower is not configured".into())
    })?;
    Ok(SiglipConfig::from_specs(&cfg.model.vision, text, vocab)?)
}

/// A model: from `model.init` when set, else freshly initialised from the seed.
pub fn build_model(
    cfg: &ExperimentConfig,
    mcfg: &SiglipConfig,
    device: Device,
) -> Result<SiglipModel> {
    tch::manual_seed(cfg.seed as i64);
    match &cfg.model.init {
        Some(dir) => {
            let m = SiglipModel::load(dir, device)?;
            if m.config() != mcfg {
                return Err(TrainerError::Config(format!(
                    "key model.init: {} holds a model whose config differs from the experiment's model section",
                    dir.display()
                )));
            }
            Ok(m)
        }
        None => Ok(SiglipModel::new(mcfg, device)?),
    }
}

/// Which split a loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `data.train`, shuffled, endless.
    Train,
    /// `data.eval`, in order, one pass.
    Eval,
}

/// A loader over `split` for this rank; `batch` is the per-rank batch size.
pub fn loader(
    cfg: &ExperimentConfig,
    split: Split,
    tok: &Arc<TextTokenizer>,
    mcfg: &SiglipConfig,
    batch: usize,
    rank: usize,
    world: usize,
) -> Result<Loader> {
    let pattern = match split {
        Split::Train => cfg.data.train.clone().ok_or_else(|| {
            TrainerError::Config("key data.train: no training shards are configured".into())
        })?,
        Split::Eval => cfg.data.eval.clone().ok_or_else(|| {
            TrainerError::Config("key data.eval: no held-out shards are configured".into())
        })?,
    };
    let shards = palisade_data::resolve_shards(&pattern, Path::new("."))?;
    let label_columns = match split {
        Split::Train => Vec::new(),
        Split::Eval => cfg
            .eval
            .zero_shot
            .iter()
            .map(|z| z.label_column.clone())
            .collect(),
    };
    let lc = LoaderConfig {
        shards,
        spec: data_spec(cfg)?,
        tokenizer: tok.clone(),
        image_size: mcfg.vision_config.image_size,
        text_len: mcfg.text_config.max_position_embeddings,
        batch_size: batch,
        seed: cfg.seed,
        shuffle: split == Split::Train && cfg.data.shuffle,
        label_columns,
        threads: cfg.data.threads,
    };
    let loader = Loader::new(lc, rank, world)?;
    Ok(match (&cfg.data.augment, split) {
        (Some(a), Split::Train) => loader.with_augment(a.clone())?,
        _ => loader,
    }
    .with_shuffle_buffer(match split {
        Split::Train => cfg.data.shuffle_buffer,
        Split::Eval => 0,
    })?)
}
