//! How a row becomes model text: the caption of an image-text pair (SigLIP), or a PaLI task's
//! prompt and target built from the row's columns (`caption {lang}`, `answer {lang} {question}`,
//! `detect {expression}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::column::{ListColumn, TextColumn};
use crate::loc::{box_to_tokens, NormBox};
use crate::prompts;

/// The row format a loader reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RowFormat {
    /// Image-text pairs: the `text` column, tokenized as the input.
    Pair,
    /// Captioning: prompt from `{lang}`; target one of `captions` (caption spec) or `text` (webli).
    Caption {
        /// Prompt template (default `caption {lang}`).
        #[serde(default = "caption_prompt")]
        prompt: String,
    },
    /// VQA: prompt from `{lang}` and `{question}`; target the majority of `answers`.
    Vqa {
        /// Prompt template (default `answer {lang} {question}`).
        #[serde(default = "answer_prompt")]
        prompt: String,
    },
    /// Referring expressions: prompt from `{expression}`; target the `box` as location tokens.
    Detect {
        /// Prompt template (default `detect {expression}`).
        #[serde(default = "detect_prompt")]
        prompt: String,
    },
}

fn caption_prompt() -> String {
    prompts::CAPTION.into()
}
fn answer_prompt() -> String {
    prompts::ANSWER.into()
}
fn detect_prompt() -> String {
    prompts::DETECT.into()
}

impl RowFormat {
    /// Columns read besides `image` and `id`: (name, must exist).
    pub(crate) fn columns(&self, has: impl Fn(&str) -> bool) -> Vec<(&'static str, bool)> {
        match self {
            RowFormat::Pair => vec![("text", true)],
            RowFormat::Caption { .. } if has("captions") => {
                vec![("captions", true), ("lang", false)]
            }
            RowFormat::Caption { .. } => vec![("text", true), ("lang", false)],
            RowFormat::Vqa { .. } => vec![("question", true), ("answers", true), ("lang", false)],
            RowFormat::Detect { .. } => vec![
                ("expression", true),
                ("box", true),
                ("width", true),
                ("height", true),
            ],
        }
    }

    /// Whether rows carry a target (PaLI tasks) or only an input text (pairs).
    pub fn has_target(&self) -> bool {
        !matches!(self, RowFormat::Pair)
    }
}

/// What a row becomes: the model's input text, the target to train on, and what evaluation
/// compares against (all reference captions or answers; a detection's true box).
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub text: String,
    pub target: Option<String>,
    pub references: Vec<String>,
    pub target_box: Option<NormBox>,
}

impl Rendered {
    fn text_only(text: String) -> Rendered {
        Rendered {
            text,
            target: None,
            references: Vec::new(),
            target_box: None,
        }
    }
}

/// A unit's columns for the format, by name.
pub(crate) struct FormatColumns {
    pub text: BTreeMap<&'static str, TextColumn>,
    pub lists: BTreeMap<&'static str, ListColumn>,
    /// Language of rows without a `lang` value (`data.lang`).
    pub lang: String,
}

impl FormatColumns {
    fn text(&self, name: &str, row: usize) -> Result<String, String> {
        self.text
            .get(name)
            .and_then(|c| c.get(row))
            .ok_or_else(|| format!("column {name:?} is null"))
    }

    fn lang(&self, row: usize) -> String {
        self.text
            .get("lang")
            .and_then(|c| c.get(row))
            .unwrap_or_else(|| self.lang.clone())
    }

    fn strings(&self, name: &str, row: usize) -> Result<Vec<String>, String> {
        let v = self
            .lists
            .get(name)
            .and_then(|c| c.strings(row))
            .ok_or_else(|| format!("column {name:?} is null or not a list of strings"))?;
        if v.is_empty() {
            return Err(format!("column {name:?} is an empty list"));
        }
        Ok(v)
    }

    /// Input text, target and references of `row`; `pick` chooses the target among several
    /// references.
    pub(crate) fn render(
        &self,
        format: &RowFormat,
        row: usize,
        pick: u64,
    ) -> Result<Rendered, String> {
        let fill = |template: &str, fields: BTreeMap<&str, String>| {
            prompts::render(template, &fields).map_err(|e| e.to_string())
        };
        match format {
            RowFormat::Pair => Ok(Rendered::text_only(self.text("text", row)?)),
            RowFormat::Caption { prompt } => {
                let references = if self.lists.contains_key("captions") {
                    self.strings("captions", row)?
                } else {
                    vec![self.text("text", row)?]
                };
                let target = references[(pick % references.len() as u64) as usize].clone();
                Ok(Rendered {
                    text: fill(prompt, [("lang", self.lang(row))].into())?,
                    target: Some(target),
                    references,
                    target_box: None,
                })
            }
            RowFormat::Vqa { prompt } => {
                let question = self.text("question", row)?;
                let references = self.strings("answers", row)?;
                let answer = prompts::majority_answer(&references).unwrap_or_default();
                Ok(Rendered {
                    text: fill(
                        prompt,
                        [("lang", self.lang(row)), ("question", question)].into(),
                    )?,
                    target: Some(answer),
                    references,
                    target_box: None,
                })
            }
            RowFormat::Detect { prompt } => {
                let expression = self.text("expression", row)?;
                let b = self
                    .lists
                    .get("box")
                    .and_then(|c| c.floats(row))
                    .ok_or("column \"box\" is null or not a list of numbers")?;
                let [x, y, w, h] = <[f64; 4]>::try_from(b.as_slice())
                    .map_err(|_| format!("column \"box\" has {} values, expected 4", b.len()))?;
                let num = |n: &str| -> Result<f64, String> {
                    self.text(n, row)?
                        .parse::<f64>()
                        .map_err(|e| format!("column {n:?}: {e}"))
                };
                let target_box =
                    NormBox::from_coco_xywh([x, y, w, h], num("width")?, num("height")?)
                        .map_err(|e| e.to_string())?;
                let target = box_to_tokens(&target_box).map_err(|e| e.to_string())?;
                Ok(Rendered {
                    text: fill(prompt, [("expression", expression)].into())?,
                    target: Some(target.clone()),
                    references: vec![target],
                    target_box: Some(target_box),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{Loader, LoaderConfig};
    use crate::synth::{write_shapes_tasks, ShapesConfig};
    use crate::{DataSpec, TextTokenizer};
    use std::sync::Arc;

    #[test]
    fn task_rows_become_prompts_and_targets() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ShapesConfig {
            rows: 20,
            image_size: 16,
            max_objects: 2,
            rows_per_shard: 20,
            rows_per_group: 10,
            seed: 3,
        };
        let s = write_shapes_tasks(dir.path(), &cfg).unwrap();
        let tok = Arc::new(
            TextTokenizer::train(&s.texts, 128)
                .unwrap()
                .with_loc_tokens(),
        );
        let loader = |task: &str, format: RowFormat| {
            let lc = LoaderConfig {
                shards: crate::resolve_shards(
                    &format!("{}/{task}", dir.path().display()),
                    std::path::Path::new("."),
                )
                .unwrap(),
                spec: DataSpec::embedded(task).unwrap(),
                tokenizer: tok.clone(),
                image_size: 16,
                text_len: 12,
                batch_size: 8,
                seed: 0,
                shuffle: false,
                label_columns: vec![],
                threads: 1,
            };
            Loader::new_task(lc, format, 8, 0, 1)
                .unwrap()
                .epoch_batches()
                .next()
                .unwrap()
                .unwrap()
        };
        let b = loader(
            "caption",
            RowFormat::Caption {
                prompt: prompts::CAPTION.into(),
            },
        );
        assert!(b.texts.iter().all(|t| t == "caption en"));
        assert!(b.targets.iter().all(|t| !t.is_empty()));
        // Evaluation sees every reference caption; the target is one of them.
        for (t, refs) in b.targets.iter().zip(&b.references) {
            assert!(refs.contains(t), "{t:?} {refs:?}");
        }
        let b = loader(
            "vqa",
            RowFormat::Vqa {
                prompt: prompts::ANSWER.into(),
            },
        );
        assert_eq!(b.texts[0], "answer en how many shapes are there?");
        assert!(
            b.references[0].contains(&b.targets[0]),
            "{:?}",
            b.references[0]
        );
        assert!(b.target_boxes.iter().all(Option::is_none));
        assert!(
            b.targets[0] == "1" || b.targets[0] == "2",
            "{:?}",
            b.targets[0]
        );
        let b = loader(
            "refcoco",
            RowFormat::Detect {
                prompt: prompts::DETECT.into(),
            },
        );
        assert!(b.texts[0].starts_with("detect "));
        let parsed = crate::loc::tokens_to_box(&b.targets[0]).unwrap();
        let truth = b.target_boxes[0].expect("detect rows carry their true box");
        assert!(
            (parsed.x1 - truth.x1).abs() <= 0.5 / 1023.0 + 1e-12,
            "{parsed:?} {truth:?}"
        );
        assert_eq!(b.references[0], vec![b.targets[0].clone()]);
        // Four location tokens, then EOS, then ignored positions.
        let row0 = &b.target_ids[..8];
        assert_eq!(row0[4], tok.eos_id());
        assert!(row0[5..].iter().all(|&t| t == -100), "{row0:?}");
        assert!(row0[..4].iter().all(|&t| t >= tok.loc_base().unwrap()));
        // A format whose columns the shards lack is refused, naming the column.
        let lc = LoaderConfig {
            shards: crate::resolve_shards(
                &format!("{}/caption", dir.path().display()),
                std::path::Path::new("."),
            )
            .unwrap(),
            spec: DataSpec::embedded("caption").unwrap(),
            tokenizer: tok.clone(),
            image_size: 16,
            text_len: 12,
            batch_size: 8,
            seed: 0,
            shuffle: false,
            label_columns: vec![],
            threads: 1,
        };
        let e = Loader::new_task(
            lc,
            RowFormat::Vqa {
                prompt: prompts::ANSWER.into(),
            },
            8,
            0,
            1,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("question"), "{e}");
    }
}
