//! Text generation from an encoder-decoder: greedy, beam search (with length penalty) and
//! temperature sampling, batched, with or without the decoder's key/value cache.

use crate::error::{ModelError, Result};
use crate::t5::{DecoderCache, T5Model};
use tch::{Kind, Tensor};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// The most likely token.
    Greedy,
    /// Beam search keeping `beams` hypotheses; finished ones are ranked by
    /// `log p / length^length_penalty`.
    Beam {
        /// Hypotheses kept per example.
        beams: usize,
        /// Exponent of the length normalisation (1.0: per-token average; 0: none).
        length_penalty: f64,
    },
    /// Sampling from `softmax(logits / temperature)` (seed libtorch for reproducibility).
    Sample {
        /// Softmax temperature (> 0).
        temperature: f64,
    },
}

/// Generation settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerateConfig {
    /// Token choice.
    pub strategy: Strategy,
    /// Most tokens generated per example (EOS included).
    pub max_new_tokens: usize,
    /// Reuse keys/values of earlier positions (off: recompute the whole prefix each step).
    pub use_cache: bool,
}

/// One generated sequence per example (EOS and what follows removed).
pub type Generated = Vec<Vec<i64>>;

/// Decoder state for one batch: either a cache or the prefix so far.
struct Stepper<'a> {
    lm: &'a T5Model,
    enc: Tensor,
    mask: Tensor,
    cache: Option<DecoderCache>,
    prefix: Tensor,
}

impl Stepper<'_> {
    /// Log-probabilities [B, V] of the next token after appending `last` [B].
    fn next(&mut self, last: &Tensor) -> Tensor {
        let last = last.unsqueeze(1);
        self.prefix = Tensor::cat(&[&self.prefix, &last], 1);
        let logits = match &mut self.cache {
            Some(c) => self.lm.decode_step(&last, &self.enc, &self.mask, c),
            None => self.lm.decode(&self.prefix, &self.enc, &self.mask),
        };
        // Under tensor parallelism each rank holds a slice of the vocabulary: the chosen-from
        // position is gathered whole, so every rank picks the same tokens.
        crate::tensor_parallel::vocab_gather(&logits.select(1, -1))
            .to_kind(Kind::Float)
            .log_softmax(-1, Kind::Float)
    }

    /// Keeps rows `index` (beam reordering).
    fn reorder(&mut self, index: &Tensor) {
        self.prefix = self.prefix.index_select(0, index);
        if let Some(c) = &mut self.cache {
            c.reorder(index);
        } else {
            self.enc = self.enc.index_select(0, index);
            self.mask = self.mask.index_select(0, index);
        }
    }
}

/// Generates from encoder states `enc` [B, S, D] with mask [B, S].
pub fn generate(
    lm: &T5Model,
    enc: &Tensor,
    enc_mask: &Tensor,
    cfg: &GenerateConfig,
) -> Result<Generated> {
    if cfg.max_new_tokens == 0 {
        return Err(ModelError::Config("max_new_tokens must be positive".into()));
    }
    tch::no_grad(|| match cfg.strategy {
        Strategy::Greedy => Ok(greedy_or_sample(lm, enc, enc_mask, cfg, None)),
        Strategy::Sample { temperature } if temperature > 0.0 => {
            Ok(greedy_or_sample(lm, enc, enc_mask, cfg, Some(temperature)))
        }
        Strategy::Sample { temperature } => Err(ModelError::Config(format!(
            "temperature {temperature} must be positive"
        ))),
        Strategy::Beam { beams: 0, .. } => {
            Err(ModelError::Config("beam size must be positive".into()))
        }
        Strategy::Beam {
            beams,
            length_penalty,
        } => Ok(beam(lm, enc, enc_mask, cfg, beams, length_penalty)),
    })
}

fn stepper<'a>(lm: &'a T5Model, enc: &Tensor, mask: &Tensor, use_cache: bool) -> Stepper<'a> {
    let b = enc.size()[0];
    Stepper {
        lm,
        cache: use_cache.then(|| lm.start_cache(enc)),
        enc: enc.shallow_clone(),
        mask: mask.shallow_clone(),
        prefix: Tensor::zeros([b, 0], (Kind::Int64, enc.device())),
    }
}

fn greedy_or_sample(
    lm: &T5Model,
    enc: &Tensor,
    mask: &Tensor,
    cfg: &GenerateConfig,
    temperature: Option<f64>,
) -> Generated {
    let b = enc.size()[0];
    let eos = lm.config().eos_token_id;
    let mut s = stepper(lm, enc, mask, cfg.use_cache);
    let mut last = Tensor::full(
        [b],
        lm.config().decoder_start_token_id,
        (Kind::Int64, enc.device()),
    );
    let mut out = vec![Vec::new(); b as usize];
    let mut done = vec![false; b as usize];
    for _ in 0..cfg.max_new_tokens {
        let logp = s.next(&last);
        last = match temperature {
            None => logp.argmax(-1, false),
            Some(t) => (logp / t)
                .softmax(-1, Kind::Float)
                .multinomial(1, true)
                .squeeze_dim(1),
        };
        let tokens: Vec<i64> = Vec::try_from(&last.to_device(tch::Device::Cpu)).unwrap_or_default();
        for (i, &tok) in tokens.iter().enumerate() {
            if !done[i] {
                if tok == eos {
                    done[i] = true;
                } else {
                    out[i].push(tok);
                }
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    out
}

/// A hypothesis: tokens and summed log-probability.
#[derive(Debug, Clone)]
struct Hyp {
    tokens: Vec<i64>,
    logp: f64,
}

fn normalised(h: &Hyp, length_penalty: f64) -> f64 {
    // The EOS token counts towards the length, as in transformers' BeamHypotheses.
    h.logp / ((h.tokens.len() + 1) as f64).powf(length_penalty)
}

fn beam(
    lm: &T5Model,
    enc: &Tensor,
    mask: &Tensor,
    cfg: &GenerateConfig,
    k: usize,
    length_penalty: f64,
) -> Generated {
    let b = enc.size()[0] as usize;
    let dev = enc.device();
    let eos = lm.config().eos_token_id;
    // Every example's encoder output repeated k times: row i·k + j is beam j of example i.
    let rep =
        Tensor::arange(b as i64, (Kind::Int64, dev)).repeat_interleave_self_int(k as i64, 0, None);
    let mut s = stepper(
        lm,
        &enc.index_select(0, &rep),
        &mask.index_select(0, &rep),
        cfg.use_cache,
    );
    let mut live: Vec<Vec<Hyp>> = (0..b)
        .map(|_| {
            (0..k)
                .map(|j| Hyp {
                    tokens: vec![],
                    logp: if j == 0 { 0.0 } else { f64::NEG_INFINITY },
                })
                .collect()
        })
        .collect();
    let mut finished: Vec<Vec<Hyp>> = vec![Vec::new(); b];
    let mut last = Tensor::full(
        [(b * k) as i64],
        lm.config().decoder_start_token_id,
        (Kind::Int64, dev),
    );
    for step in 0..cfg.max_new_tokens {
        let logp = s.next(&last).to_device(tch::Device::Cpu);
        let v = logp.size()[1];
        let scores: Vec<f64> = live.iter().flatten().map(|h| h.logp).collect();
        let total = logp.to_kind(Kind::Double) + Tensor::from_slice(&scores).unsqueeze(1);
        let (top, idx) = total
            .view([b as i64, k as i64 * v])
            .topk((2 * k) as i64, -1, true, true);
        let top: Vec<Vec<f64>> = Vec::try_from(&top).unwrap_or_default();
        let idx: Vec<Vec<i64>> = Vec::try_from(&idx).unwrap_or_default();
        let mut rows = Vec::with_capacity(b * k);
        let mut next_tokens = Vec::with_capacity(b * k);
        for i in 0..b {
            let mut new_live = Vec::with_capacity(k);
            let worst_done = |f: &Vec<Hyp>| {
                f.iter()
                    .map(|h| normalised(h, length_penalty))
                    .fold(f64::INFINITY, f64::min)
            };
            let closed = finished[i].len() >= k
                && live[i]
                    .iter()
                    .map(|h| h.logp)
                    .fold(f64::NEG_INFINITY, f64::max)
                    / ((step + 1) as f64).powf(length_penalty)
                    <= worst_done(&finished[i]);
            for (rank, (&score, &flat)) in top[i].iter().zip(&idx[i]).enumerate() {
                if closed || new_live.len() == k {
                    break;
                }
                let (j, tok) = ((flat / v) as usize, flat % v);
                let parent = &live[i][j];
                if score == f64::NEG_INFINITY {
                    continue;
                }
                if tok == eos {
                    // Only the top-k candidates may finish, as in transformers.
                    if rank < k {
                        finished[i].push(Hyp {
                            tokens: parent.tokens.clone(),
                            logp: score,
                        });
                    }
                    continue;
                }
                let mut tokens = parent.tokens.clone();
                tokens.push(tok);
                new_live.push(Hyp {
                    tokens,
                    logp: score,
                });
                rows.push((i * k + j) as i64);
                next_tokens.push(tok);
            }
            // Keep the batch rectangular: pad with dead copies of the first beam.
            while new_live.len() < k {
                new_live.push(Hyp {
                    tokens: vec![],
                    logp: f64::NEG_INFINITY,
                });
                rows.push((i * k) as i64);
                next_tokens.push(eos);
            }
            live[i] = new_live;
        }
        let all_closed = (0..b).all(|i| live[i].iter().all(|h| h.logp == f64::NEG_INFINITY));
        if all_closed || step + 1 == cfg.max_new_tokens {
            break;
        }
        s.reorder(&Tensor::from_slice(&rows).to_device(dev));
        last = Tensor::from_slice(&next_tokens).to_device(dev);
    }
    (0..b)
        .map(|i| {
            let mut pool = std::mem::take(&mut finished[i]);
            pool.extend(
                live[i]
                    .iter()
                    .filter(|h| h.logp > f64::NEG_INFINITY)
                    .cloned(),
            );
            pool.into_iter()
                .max_by(|a, b| {
                    normalised(a, length_penalty).total_cmp(&normalised(b, length_penalty))
                })
                .map(|h| h.tokens)
                .unwrap_or_default()
        })
        .collect()
}
