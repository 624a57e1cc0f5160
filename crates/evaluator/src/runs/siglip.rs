//! Evaluates a SigLIP model on held-out image-text pairs: retrieval both ways and zero-shot
//! classification. Each rank embeds its share; the embeddings are gathered and scored whole.

use super::{share, EvalSetup};
use crate::error::{EvalError, Result};
use crate::inputs::pixels_and_ids;
use crate::report::{EvalReport, RetrievalResult, ZeroShotResult};
use crate::EvalConfig;
use palisade_data::{Batch, InputSize, Loader, RankShare, Split, TextTokenizer};
use palisade_metrics::{retrieval, zero_shot};
use palisade_model::SiglipModel;
use palisade_sharding::ProcessGroup;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Evaluates `model` on `data.eval` on every rank of `group` together (each reads its share of
/// the rows); every rank gets the same report. `None` when the config names no held-out data.
pub fn evaluate_held_out(
    model: &SiglipModel,
    tok: &Arc<TextTokenizer>,
    setup: &EvalSetup,
    group: &dyn ProcessGroup,
    step: Option<u64>,
) -> Result<Option<EvalReport>> {
    if setup.data.eval.is_none() {
        return Ok(None);
    }
    let labels = setup
        .eval
        .zero_shot
        .iter()
        .map(|z| z.label_column.clone())
        .collect();
    let cfg = model.config();
    let loader = share(
        setup.data.pairs(
            Split::Eval,
            tok,
            InputSize {
                image_size: cfg.vision_config.image_size,
                text_len: cfg.text_config.max_position_embeddings,
            },
            setup.seed,
            labels,
            RankShare {
                batch_size: setup.eval.batch_size,
                rank: group.rank(),
                world: group.world_size(),
            },
        ),
        group.world_size(),
    )?;
    // Synthetic scenes carry the annotations that bound retrieval; other data has no ceiling.
    let fits = match &setup.data.eval {
        Some(pattern) => palisade_data::synth::scene_fits(&palisade_data::resolve_shards(
            pattern,
            std::path::Path::new("."),
        )?)?,
        None => None,
    };
    Ok(Some(evaluate(
        model,
        loader.iter().flat_map(Loader::epoch_batches),
        tok,
        setup.eval,
        fits.as_ref(),
        step,
        group,
    )?))
}

/// Scores matrix `a · bᵀ` as rows of f32.
fn score_rows(a: &Tensor, b: &Tensor) -> Result<Vec<Vec<f32>>> {
    let m = a
        .matmul(&b.tr())
        .to_kind(Kind::Float)
        .to_device(Device::Cpu);
    Ok(Vec::<Vec<f32>>::try_from(m)?)
}

/// What one rank embedded, with the texts and labels the scores need.
#[derive(Default)]
struct Embedded {
    img: Vec<Tensor>,
    txt: Vec<Tensor>,
    ids: Vec<String>,
    texts: Vec<String>,
    labels: BTreeMap<String, Vec<String>>,
    skipped: usize,
}

/// The texts, labels and embedding widths a rank sends to the others.
#[derive(Serialize, Deserialize)]
struct Meta {
    ids: Vec<String>,
    texts: Vec<String>,
    labels: BTreeMap<String, Vec<String>>,
    skipped: usize,
}

fn embed(
    model: &SiglipModel,
    batches: impl IntoIterator<Item = palisade_data::Result<Batch>>,
) -> Result<Embedded> {
    let device = model.vs.device();
    let mut e = Embedded::default();
    tch::no_grad(|| -> Result<()> {
        for b in batches {
            let b = b?;
            e.skipped += b.skipped;
            if b.size == 0 {
                continue;
            }
            let (p, ids) = pixels_and_ids(&b, device);
            e.img.push(
                model
                    .embed_images(&p)?
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu),
            );
            e.txt.push(
                model
                    .embed_texts(&ids)?
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu),
            );
            e.ids.extend(b.ids.iter().cloned());
            e.texts.extend(b.texts.iter().cloned());
            for (k, v) in &b.labels {
                e.labels
                    .entry(k.clone())
                    .or_default()
                    .extend(v.iter().cloned());
            }
        }
        Ok(())
    })?;
    Ok(e)
}

/// Every rank's embeddings, texts and labels, in rank order.
fn gather(group: &dyn ProcessGroup, e: Embedded, dim: i64) -> Result<(Tensor, Tensor, Meta)> {
    let cat = |v: &[Tensor]| {
        if v.is_empty() {
            Tensor::zeros([0, dim], (Kind::Float, Device::Cpu))
        } else {
            Tensor::cat(v, 0)
        }
    };
    let (img, txt) = (cat(&e.img), cat(&e.txt));
    let meta = Meta {
        ids: e.ids,
        texts: e.texts,
        labels: e.labels,
        skipped: e.skipped,
    };
    if group.world_size() == 1 {
        return Ok((img, txt, meta));
    }
    let to_bytes = |t: &Tensor| -> Result<Vec<u8>> {
        let v = Vec::<f32>::try_from(t.reshape([-1]))?;
        Ok(v.iter().flat_map(|x| x.to_le_bytes()).collect())
    };
    let from_bytes = |b: &[u8]| -> Tensor {
        let v: Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Tensor::from_slice(&v).view([-1, dim])
    };
    let json = serde_json::to_vec(&meta).map_err(|e| EvalError::Invalid(e.to_string()))?;
    let imgs = palisade_sharding::all_gather_bytes(group, &to_bytes(&img)?)?;
    let txts = palisade_sharding::all_gather_bytes(group, &to_bytes(&txt)?)?;
    let metas = palisade_sharding::all_gather_bytes(group, &json)?;
    let mut all = Meta {
        ids: Vec::new(),
        texts: Vec::new(),
        labels: BTreeMap::new(),
        skipped: 0,
    };
    for (rank, m) in metas.iter().enumerate() {
        let m: Meta = serde_json::from_slice(m).map_err(|e| {
            EvalError::Invalid(format!("rank {rank} sent unreadable evaluation data: {e}"))
        })?;
        all.ids.extend(m.ids);
        all.texts.extend(m.texts);
        for (k, v) in m.labels {
            all.labels.entry(k).or_default().extend(v);
        }
        all.skipped += m.skipped;
    }
    let img = Tensor::cat(&imgs.iter().map(|b| from_bytes(b)).collect::<Vec<_>>(), 0);
    let txt = Tensor::cat(&txts.iter().map(|b| from_bytes(b)).collect::<Vec<_>>(), 0);
    Ok((img, txt, all))
}

/// Embeds this rank's batches, gathers every rank's embeddings, then scores retrieval (with
/// its ceilings when `fits` gives each row's fitting captions) and the configured zero-shot
/// tasks over the whole set (the same report on every rank).
pub fn evaluate(
    model: &SiglipModel,
    batches: impl IntoIterator<Item = palisade_data::Result<Batch>>,
    tokenizer: &TextTokenizer,
    cfg: &EvalConfig,
    fits: Option<&HashMap<String, HashSet<String>>>,
    step: Option<u64>,
    group: &dyn ProcessGroup,
) -> Result<EvalReport> {
    let text_len = model.text.config().max_position_embeddings;
    let dim = model.text.config().projection() as i64;
    let (
        img,
        txt,
        Meta {
            ids,
            texts,
            labels,
            skipped,
        },
    ) = gather(group, embed(model, batches)?, dim)?;
    if texts.is_empty() {
        return Err(EvalError::Invalid(
            "evaluation data has no readable examples".into(),
        ));
    }
    let n = texts.len();

    let gold = retrieval::same_caption_groups(&texts);
    let i2t = retrieval::recall_at_k(&score_rows(&img, &txt)?, &gold, &cfg.recall_at);
    let t2i = retrieval::recall_at_k(&score_rows(&txt, &img)?, &gold, &cfg.recall_at);
    let chance = retrieval::chance_recall(n, &gold, &cfg.recall_at);
    let ceilings = fits.map(|f| ceilings(f, &ids, &texts, &gold, &cfg.recall_at));
    let mut results = Vec::new();
    for (d, (dir, rec)) in [("image_to_text", &i2t), ("text_to_image", &t2i)]
        .into_iter()
        .enumerate()
    {
        let ceiling = ceilings.as_ref().and_then(|c| c[d].as_ref());
        for (i, ((k, r), (_, c))) in rec.iter().zip(&chance).enumerate() {
            results.push(RetrievalResult {
                direction: dir.into(),
                k: *k,
                recall: *r,
                chance: *c,
                ceiling: ceiling.map(|c| c[i].1),
            });
        }
    }

    let mut zs = Vec::new();
    for task in &cfg.zero_shot {
        let column = labels.get(&task.label_column).ok_or_else(|| {
            EvalError::Invalid(format!(
                "eval.zero_shot ({}): label column {:?} was not loaded with the evaluation data",
                task.name, task.label_column
            ))
        })?;
        let class_emb = tch::no_grad(|| {
            class_embeddings(model, tokenizer, &task.classes, &task.templates, text_len)
        })?;
        let scores = score_rows(&img, &class_emb)?;
        let y: Vec<Option<usize>> = column
            .iter()
            .map(|l| task.classes.iter().position(|c| c == l))
            .collect();
        zs.push(ZeroShotResult {
            name: task.name.clone(),
            accuracy: zero_shot::accuracy(&scores, &y),
            chance: 1.0 / task.classes.len() as f64,
            majority: zero_shot::majority_rate(&y, task.classes.len()),
            classes: task.classes.len(),
            examples: n,
        });
    }
    Ok(EvalReport {
        step,
        examples: n,
        skipped,
        retrieval: results,
        zero_shot: zs,
        tasks: Vec::new(),
        qualitative: Vec::new(),
    })
}

/// Image→text and text→image Recall@K ceilings from the scenes' fitting captions (`fits`: row
/// id → captions that fit its scene); `None` for a direction the annotations do not cover.
///
/// Text→image: every scene a caption fits is as likely to be its own (the generator picks
/// any of a scene's captions alike), so they tie. Image→text: of the captions that fit an
/// image, one that fits fewer scenes is more telling (higher pointwise mutual information,
/// what the sigmoid loss's logits estimate), so the best pairwise scorer ranks fitting captions
/// by how many eval scenes they fit, fewest first, and ties those that fit as many as the gold.
fn ceilings(
    fits: &HashMap<String, HashSet<String>>,
    ids: &[String],
    texts: &[String],
    gold: &[Vec<usize>],
    ks: &[usize],
) -> [Option<retrieval::Recalls>; 2] {
    let Some(scenes) = ids
        .iter()
        .map(|id| fits.get(id))
        .collect::<Option<Vec<_>>>()
    else {
        return [None, None];
    };
    let mut rows_of: HashMap<&str, usize> = HashMap::new();
    for t in texts {
        *rows_of.entry(t.as_str()).or_default() += 1;
    }
    let mut scenes_of: HashMap<&str, usize> = HashMap::new();
    for s in &scenes {
        for c in s.iter() {
            *scenes_of.entry(c.as_str()).or_default() += 1;
        }
    }
    let fit_count = |c: &str| scenes_of.get(c).copied().unwrap_or(0);
    // Image i: its fitting text rows, split by whether their caption fits fewer scenes than
    // its own (surely ahead) or as many (tied).
    let (mut ahead, mut tied) = (Vec::new(), Vec::new());
    for (s, own) in scenes.iter().zip(texts) {
        let own = fit_count(own);
        let (mut a, mut t) = (0, 0);
        for c in s.iter() {
            let rows = rows_of.get(c.as_str()).copied().unwrap_or(0);
            match fit_count(c).cmp(&own) {
                std::cmp::Ordering::Less => a += rows,
                std::cmp::Ordering::Equal => t += rows,
                std::cmp::Ordering::Greater => {}
            }
        }
        ahead.push(a);
        tied.push(t);
    }
    // Text i: every scene its caption fits.
    let t2i: Vec<usize> = texts.iter().map(|t| fit_count(t)).collect();
    [
        retrieval::ceiling_recall(&ahead, &tied, gold, ks),
        retrieval::ceiling_recall(&vec![0; texts.len()], &t2i, gold, ks),
    ]
}

/// One normalised embedding per class: the mean of its template embeddings, renormalised.
fn class_embeddings(
    model: &SiglipModel,
    tok: &TextTokenizer,
    classes: &[String],
    templates: &[String],
    text_len: usize,
) -> Result<Tensor> {
    let device = model.vs.device();
    let mut rows = Vec::new();
    for c in classes {
        let mut ids = Vec::new();
        for t in templates {
            ids.extend(tok.encode_fixed(&t.replace("{}", c), text_len)?);
        }
        let ids = Tensor::from_slice(&ids)
            .view([templates.len() as i64, text_len as i64])
            .to_device(device);
        let mean = model
            .embed_texts(&ids)?
            .mean_dim([0i64].as_slice(), false, Kind::Float);
        rows.push(palisade_model::siglip::l2_normalize(&mean));
    }
    Ok(Tensor::stack(&rows, 0).to_device(Device::Cpu))
}
