//! Evaluation on the experiment's held-out data, shared by the train loop and `palisade eval`:
//! SigLIP retrieval and zero-shot on `data.eval`; PaLI benchmarks (`eval.tasks`) on every rank.

use crate::config::{ExperimentConfig, Stage};
use crate::error::{Result, TrainerError};
use crate::setup::{self, Split};
use crate::stage::StageModel;
use palisade_data::{Loader, LoaderConfig, RowFormat, ShardIndex, TextTokenizer};
use palisade_evaluator::{pali_eval, siglip_eval, EvalReport, EvalTask, TaskKind};
use palisade_model::pali::PaliModel;
use palisade_model::SiglipModel;
use palisade_sharding::ProcessGroup;
use std::path::Path;
use std::sync::Arc;

/// Report folder inside a run folder.
pub const REPORT_DIR: &str = "report";

/// Evaluates the stage's model on every rank of `group` together (each rank reads its share of
/// the held-out rows); every rank gets the same report. `None` when the config names no held-out
/// data. With `report_dir`, example images are written under it.
pub fn evaluate_stage(
    cfg: &ExperimentConfig,
    model: &StageModel,
    tok: &Arc<TextTokenizer>,
    group: &dyn ProcessGroup,
    step: Option<u64>,
    report_dir: Option<&Path>,
) -> Result<Option<EvalReport>> {
    match model {
        StageModel::Siglip(m) => evaluate(cfg, m, tok, group, step),
        StageModel::Pali { model, .. } => evaluate_pali(cfg, model, tok, group, step, report_dir),
    }
}

/// Embeds the held-out split (this rank's share) and scores it over all ranks; `None` when no
/// `data.eval` is configured.
pub fn evaluate(
    cfg: &ExperimentConfig,
    model: &SiglipModel,
    tok: &Arc<TextTokenizer>,
    group: &dyn ProcessGroup,
    step: Option<u64>,
) -> Result<Option<EvalReport>> {
    if cfg.data.eval.is_none() {
        return Ok(None);
    }
    let (rank, world) = (group.rank(), group.world_size());
    let loader = share(
        setup::loader(
            cfg,
            Split::Eval,
            tok,
            model.config(),
            cfg.eval.batch_size,
            rank,
            world,
        ),
        world,
    )?;
    Ok(Some(siglip_eval::evaluate(
        model,
        loader.iter().flat_map(Loader::epoch_batches),
        tok,
        &cfg.eval,
        step,
        group,
    )?))
}

/// This rank's loader, or `None` when a small held-out set has fewer row groups than there are
/// ranks and none falls to this one (the others hold the rows; an empty set is reported once
/// all ranks have gathered).
fn share(loader: Result<Loader>, world: usize) -> Result<Option<Loader>> {
    match loader {
        Ok(l) => Ok(Some(l)),
        Err(TrainerError::Data(palisade_data::DataError::EmptyDataset { .. })) if world > 1 => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Decodes and scores every task in `eval.tasks`; `None` when there are none.
pub fn evaluate_pali(
    cfg: &ExperimentConfig,
    model: &PaliModel,
    tok: &Arc<TextTokenizer>,
    group: &dyn ProcessGroup,
    step: Option<u64>,
    report_dir: Option<&Path>,
) -> Result<Option<EvalReport>> {
    if cfg.eval.tasks.is_empty() {
        return Ok(None);
    }
    let mut report = EvalReport {
        step,
        examples: 0,
        skipped: 0,
        retrieval: Vec::new(),
        zero_shot: Vec::new(),
        tasks: Vec::new(),
        qualitative: Vec::new(),
    };
    // Open every task's shards first, so a bad path fails before any decoding.
    let mut loaders = Vec::new();
    for (name, task) in &cfg.eval.tasks {
        let loader = share(
            task_loader(cfg, task, tok, model, group.rank(), group.world_size()),
            group.world_size(),
        )
        .map_err(|e| TrainerError::Config(format!("key eval.tasks.{name}: {e}")))?;
        loaders.push((name, task, loader));
    }
    for (name, task, loader) in loaders {
        let (result, examples) = pali_eval::evaluate_task(
            group,
            name,
            task,
            model,
            tok,
            loader.iter().flat_map(Loader::epoch_batches),
            &cfg.eval.decode,
            cfg.eval.examples,
            report_dir,
        )?;
        report.examples += result.examples;
        report.skipped += result.skipped;
        report.tasks.push(result);
        report.qualitative.extend(examples);
    }
    Ok(Some(report))
}

/// This rank's share of one task's held-out rows, as prompts with their references.
fn task_loader(
    cfg: &ExperimentConfig,
    task: &EvalTask,
    tok: &Arc<TextTokenizer>,
    model: &PaliModel,
    rank: usize,
    world: usize,
) -> Result<Loader> {
    let spec = setup::spec_named(task.spec.as_deref().unwrap_or(task.kind.default_spec()))?;
    let shards = palisade_data::resolve_shards(&task.data, Path::new("."))?;
    let index = ShardIndex::build(&shards, &spec)?;
    let labels = pali_eval::label_columns(task.kind, |c| {
        index.shards().iter().all(|s| s.has_column(c))
    });
    let prompt = |default: &str| task.prompt.clone().unwrap_or_else(|| default.to_string());
    let format = match task.kind {
        TaskKind::Caption | TaskKind::VideoCaption => RowFormat::Caption {
            prompt: prompt(palisade_data::prompts::CAPTION),
        },
        TaskKind::Vqa | TaskKind::VideoQa => RowFormat::Vqa {
            prompt: prompt(palisade_data::prompts::ANSWER),
        },
        TaskKind::Refcoco => RowFormat::Detect {
            prompt: prompt(palisade_data::prompts::DETECT),
        },
    };
    let lc = LoaderConfig {
        shards,
        spec,
        tokenizer: tok.clone(),
        image_size: model.config().vision_config.image_size,
        text_len: cfg.data.text_len,
        batch_size: cfg.eval.batch_size,
        seed: cfg.seed,
        shuffle: false,
        label_columns: labels,
        threads: cfg.data.threads,
    };
    let loader = Loader::new_task(lc, format, cfg.data.target_len, rank, world)?;
    Ok(match task.frames {
        Some(f) => loader.with_max_frames(f)?,
        None => loader,
    })
}

/// Writes `report/eval.json` and `report/eval.md` in `run_dir`.
pub fn write_report(cfg: &ExperimentConfig, report: &EvalReport, run_dir: &Path) -> Result<()> {
    report.write(&run_dir.join(REPORT_DIR), &report_title(cfg))?;
    Ok(())
}

/// The report's title: the experiment and what was evaluated.
pub fn report_title(cfg: &ExperimentConfig) -> String {
    match cfg.stage {
        Stage::Siglip => format!("{}: SigLIP evaluation", cfg.name),
        Stage::Pali => format!("{}: PaLI evaluation", cfg.name),
    }
}
