//! `bench decode`: tokens per second of text generation from an encoder-decoder, greedy and beam,
//! with and without the key/value cache, from encoder inputs already embedded (as PaLI's
//! projected image tokens + prompt would be), excluding start-up.

use super::timing;
use crate::error::Result;
use palisade_model::decoding::{generate, GenerateConfig, Strategy};
use palisade_model::t5::{T5Config, T5Model};
use serde::Serialize;
use tch::{nn, Kind, Tensor};

/// One measured generation setting.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeBench {
    /// `greedy` or `beamK`.
    pub strategy: String,
    /// Key/value cache on.
    pub use_cache: bool,
    /// Median seconds per `generate` call.
    pub seconds: f64,
    /// Generated tokens per second (batch × new tokens / seconds; beams not multiplied).
    pub tokens_per_sec: f64,
}

impl DecodeBench {
    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "{:>7} cache={:<5} {:8.3} s/call {:9.1} tokens/s",
            self.strategy, self.use_cache, self.seconds, self.tokens_per_sec
        )
    }
}

/// The decode benchmark (`bench decode`): the model and the sizes of each call.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeShape {
    /// Language-model preset (`tiny`, `t5-v1_1-small`, `t5-v1_1-base`, `ul2-3b`, …).
    #[arg(long, default_value = "t5-v1_1-small")]
    pub preset: String,
    /// Vocabulary size (default: T5's 32,128 plus 1,024 location tokens).
    #[arg(long, default_value_t = 33152)]
    pub vocab: usize,
    /// Examples per call.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Encoder tokens (e.g. 256 visual + 16 prompt).
    #[arg(long, default_value_t = 272)]
    pub enc_len: usize,
    /// Tokens generated per example (EOS is disabled so every call makes exactly this many).
    #[arg(long, default_value_t = 32)]
    pub new_tokens: usize,
    /// Beam size of the beam runs.
    #[arg(long, default_value_t = 4)]
    pub beams: usize,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// libtorch threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// `cpu` or `cuda[:N]` (bf16 autocast on CUDA).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Also write the model's transformers config.json (for the PyTorch baseline).
    #[arg(long)]
    pub model_config_out: Option<std::path::PathBuf>,
}

/// Times greedy and beam generation, cache on and off, for a random model of `shape`'s preset.
pub fn decode(shape: &DecodeShape) -> Result<Vec<DecodeBench>> {
    let mut cfg = T5Config::preset(&shape.preset, shape.vocab)?;
    if let Some(out) = &shape.model_config_out {
        cfg.save(out)?;
    }
    crate::device::set_threads(shape.threads);
    let device = crate::device::parse_device(&shape.device, 0)?;
    cfg.eos_token_id = -1; // never produced: every call generates exactly `new_tokens`
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let lm = T5Model::new(vs.root(), &cfg);
    let embeds = Tensor::randn(
        [shape.batch as i64, shape.enc_len as i64, cfg.d_model as i64],
        (Kind::Float, device),
    );
    let mask = Tensor::ones(
        [shape.batch as i64, shape.enc_len as i64],
        (Kind::Int64, device),
    );
    let mut out = Vec::new();
    for (name, strategy) in [
        ("greedy".to_string(), Strategy::Greedy),
        (
            format!("beam{}", shape.beams),
            Strategy::Beam {
                beams: shape.beams,
                length_penalty: 1.0,
            },
        ),
    ] {
        for use_cache in [true, false] {
            let gc = GenerateConfig {
                strategy,
                max_new_tokens: shape.new_tokens,
                use_cache,
            };
            let (ms, _) = timing::median_mean_ms(1, shape.repeats, || {
                palisade_model::autocast::bf16(
                    device.is_cuda().then_some(device),
                    || -> Result<()> {
                        let enc = tch::no_grad(|| lm.encode(&embeds, &mask));
                        generate(&lm, &enc, &mask, &gc)?;
                        Ok(())
                    },
                )?;
                timing::sync(device);
                Ok(())
            })?;
            let seconds = ms / 1000.0;
            out.push(DecodeBench {
                strategy: name.clone(),
                use_cache,
                seconds,
                tokens_per_sec: (shape.batch * shape.new_tokens) as f64 / seconds,
            });
        }
    }
    Ok(out)
}
