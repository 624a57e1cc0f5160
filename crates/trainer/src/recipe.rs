//! A recipe: the paper's stages in one YAML. The shared sections (`model`, `data`, `train`,
//! `eval`, ...) hold what every stage has in common; `stages:` lists named stages in order, each
//! overriding what it changes. Each stage is a complete run folder at `RUN/stages/NN-NAME/` and
//! starts from its predecessor's final checkpoint (the previous stage, or the one `from:`
//! names) without the user naming it; `RUN/report/` compares them on one page.

use crate::checkpoint;
use crate::config::ExperimentConfig;
use crate::error::{io_at, Result, TrainerError};
use crate::job::run_on_mesh_for;
use crate::stages;
use crate::train::{train_on, End, TrainOptions, TrainSummary};
use crate::yaml_tree::YamlTree;
use serde_norway::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// What a config file describes: one stage, or a recipe of several.
#[derive(Debug)]
pub enum Experiment {
    /// A config without `stages:`.
    Single(Box<ExperimentConfig>),
    /// A config with `stages:`.
    Recipe(Recipe),
}

impl Experiment {
    /// Loads `path` with the `sets` overrides (`--set stages.NAME.train.steps=5` reaches into a
    /// stage), checking every stage's config as a whole before anything runs.
    pub fn load(path: &Path, sets: &[String]) -> Result<Experiment> {
        let mut tree = YamlTree::load(path)?;
        tree.apply_sets(sets)?;
        Experiment::from_tree(tree)
    }

    /// The experiment a merged tree describes, checked.
    pub fn from_tree(mut tree: YamlTree) -> Result<Experiment> {
        if tree.take("sweep").is_some() {
            return Err(TrainerError::Config(format!(
                "{}: key sweep: this config describes a sweep; run it with `palisade sweep`",
                tree.file.display()
            )));
        }
        match tree.take("stages") {
            None => Ok(Experiment::Single(Box::new(ExperimentConfig::from_tree(
                &tree,
            )?))),
            Some(stages) => Ok(Experiment::Recipe(Recipe::from_tree(tree, stages)?)),
        }
    }
}

/// One stage of a recipe.
#[derive(Debug, Clone)]
pub struct RecipeStage {
    /// Its name (`stages[i].name`).
    pub name: String,
    /// The stage it starts from (index into the recipe's stages), if any.
    pub from: Option<usize>,
    /// Its resolved config (shared sections with its overrides).
    pub cfg: ExperimentConfig,
}

/// An ordered list of stages sharing one run folder.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The shared `name:`.
    pub name: String,
    /// The shared `run_dir:`, if set.
    pub run_dir: Option<PathBuf>,
    /// The stages, in order.
    pub stages: Vec<RecipeStage>,
}

/// Refuses what is not a stage list, naming the file and key.
fn bad(tree: &YamlTree, msg: String) -> TrainerError {
    TrainerError::Config(format!("{}: key stages: {msg}", tree.origin_of("stages")))
}

impl Recipe {
    fn from_tree(tree: YamlTree, stages: Value) -> Result<Recipe> {
        let Value::Sequence(entries) = stages else {
            return Err(bad(&tree, "expected a list of stages".into()));
        };
        if entries.is_empty() {
            return Err(bad(&tree, "the list is empty".into()));
        }
        let mut out: Vec<RecipeStage> = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let Value::Mapping(mut m) = entry else {
                return Err(bad(&tree, format!("stage {i} is not a mapping")));
            };
            let name = match m.remove("name") {
                Some(Value::String(n))
                    if !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)) =>
                {
                    n
                }
                other => {
                    return Err(bad(
                        &tree,
                        format!(
                            "stage {i} needs a `name:` of letters, digits, _ or - (got {other:?})"
                        ),
                    ))
                }
            };
            if out.iter().any(|s| s.name == name) {
                return Err(bad(&tree, format!("two stages are named {name:?}")));
            }
            let from = match m.remove("from") {
                None => (i > 0).then(|| i - 1),
                Some(Value::Null) => None,
                Some(Value::String(f)) => {
                    Some(out.iter().position(|s| s.name == f).ok_or_else(|| {
                        bad(
                            &tree,
                            format!("stage {name}: from: {f:?} is not an earlier stage"),
                        )
                    })?)
                }
                Some(other) => {
                    return Err(bad(
                        &tree,
                        format!("stage {name}: from: {other:?} is not a stage name"),
                    ))
                }
            };
            let origin = format!("{} (stage {name})", tree.file.display());
            let staged = tree.overlay(Value::Mapping(m), &origin);
            let cfg = ExperimentConfig::from_tree(&staged).map_err(|e| match e {
                TrainerError::Config(msg) if msg.contains(&format!("(stage {name})")) => {
                    TrainerError::Config(msg)
                }
                TrainerError::Config(msg) => TrainerError::Config(format!("stage {name}: {msg}")),
                other => other,
            })?;
            if let Some(p) = from {
                let (want, have) = (&cfg.stage, &out[p].cfg.stage);
                stages::kind(want)
                    .map_err(TrainerError::Config)?
                    .start_from(&mut cfg.clone(), have, Path::new("."))
                    .map_err(|e| TrainerError::Config(format!("stage {name}: {e}")))?;
            }
            out.push(RecipeStage { name, from, cfg });
        }
        let first = &out[0].cfg;
        Ok(Recipe {
            name: first.name.clone(),
            run_dir: first.run_dir.clone(),
            stages: out,
        })
    }

    /// The recipe's run folder: `--run-dir`, else `run_dir:`, else `runs/<name>`.
    pub fn resolve_run_dir(&self, cli: Option<&Path>) -> PathBuf {
        cli.map(Path::to_path_buf)
            .or_else(|| self.run_dir.clone())
            .unwrap_or_else(|| PathBuf::from("runs").join(&self.name))
    }

    /// Stage `i`'s run folder under `root`.
    pub fn stage_dir(&self, root: &Path, i: usize) -> PathBuf {
        root.join("stages")
            .join(format!("{i:02}-{}", self.stages[i].name))
    }

    /// Every stage's resolved config, as written to `RUN/recipe.yaml`.
    pub fn to_yaml(&self) -> String {
        self.stages
            .iter()
            .map(|s| format!("# stage {}\n{}", s.name, s.cfg.to_yaml()))
            .collect::<Vec<_>>()
            .join("---\n")
    }

    /// Hash of every stage's resolved config (ranks must agree on it).
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_yaml().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// What a recipe run did, stage by stage.
#[derive(Debug)]
pub struct RecipeSummary {
    /// The recipe's run folder.
    pub run_dir: PathBuf,
    /// Each stage run by this invocation, by name.
    pub stages: Vec<(String, TrainSummary)>,
    /// How the invocation ended (its last stage's end; `Done` when every stage finished).
    pub end: End,
    /// Whether every stage has finished (then `RUN/report/` compares them).
    pub complete: bool,
}

/// The final checkpoint of stage `i` under `root`, when that stage has finished.
fn final_checkpoint(r: &Recipe, root: &Path, i: usize) -> Option<PathBuf> {
    let steps = r.stages[i].cfg.train.steps;
    let dir = r
        .stage_dir(root, i)
        .join("checkpoints")
        .join(checkpoint::dir_name(steps));
    checkpoint::problem(steps, &dir).is_none().then_some(dir)
}

/// Runs the recipe's stages in order (or only the stage `only`), each from its predecessor's
/// final checkpoint; with `opts.resume` finished stages are passed over and the interrupted one
/// continues where it stopped.
pub fn train_recipe(r: &Recipe, opts: &TrainOptions, only: Option<&str>) -> Result<RecipeSummary> {
    if let Some(name) = only {
        if !r.stages.iter().any(|s| s.name == name) {
            let names: Vec<&str> = r.stages.iter().map(|s| s.name.as_str()).collect();
            return Err(TrainerError::Config(format!(
                "--stage {name}: not a stage of this recipe ({})",
                names.join(", ")
            )));
        }
    }
    let root = r.resolve_run_dir(opts.run_dir.as_deref());
    run_on_mesh_for(&r.hash(), |mesh| {
        let rank = mesh.rank();
        // One recipe runner per folder; each stage locks its own folder too.
        let _lock = if rank == 0 {
            let lock = palisade_files::FolderLock::acquire(&root)?;
            palisade_files::write(&root.join("recipe.yaml"), r.to_yaml())?;
            Some(lock)
        } else {
            None
        };
        let mut ran = Vec::new();
        let mut end = End::Done;
        for (i, stage) in r.stages.iter().enumerate() {
            if only.is_some_and(|n| n != stage.name) {
                continue;
            }
            let mut cfg = stage.cfg.clone();
            cfg.run_dir = Some(r.stage_dir(&root, i));
            if let Some(p) = stage.from {
                let prev = &r.stages[p];
                let dir = final_checkpoint(r, &root, p).ok_or_else(|| {
                    TrainerError::Config(format!(
                        "stage {} starts from stage {}'s final checkpoint (step {}), which {} does not hold yet: run that stage first (--stage {})",
                        stage.name,
                        prev.name,
                        prev.cfg.train.steps,
                        r.stage_dir(&root, p).display(),
                        prev.name
                    ))
                })?;
                stages::kind_of(&cfg)?
                    .start_from(&mut cfg, &prev.cfg.stage, &dir)
                    .map_err(|e| TrainerError::Config(format!("stage {}: {e}", stage.name)))?;
            }
            if rank == 0 {
                tracing::info!(
                    "stage {} ({}): {}",
                    stage.name,
                    cfg.stage,
                    r.stage_dir(&root, i).display()
                );
            }
            let stage_opts = TrainOptions {
                run_dir: None,
                ..opts.clone()
            };
            let s = train_on(mesh, &cfg, &stage_opts)?;
            let finished = s.end == End::AlreadyFinished || s.step == cfg.train.steps;
            end = s.end;
            ran.push((stage.name.clone(), s));
            if !finished || matches!(end, End::Preempted(_)) {
                break;
            }
        }
        let complete = (0..r.stages.len()).all(|i| final_checkpoint(r, &root, i).is_some());
        if complete && rank == 0 {
            let dirs: Vec<PathBuf> = (0..r.stages.len()).map(|i| r.stage_dir(&root, i)).collect();
            let out = root.join("report");
            std::fs::create_dir_all(&out).map_err(io_at(&out))?;
            palisade_evaluator::html::write_comparison(&dirs, &out)?;
        }
        Ok(RecipeSummary {
            run_dir: root.clone(),
            stages: ran,
            end,
            complete,
        })
    })
}
