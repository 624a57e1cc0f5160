//! `bench decode`: tokens per second of text generation from an encoder-decoder, greedy and beam,
//! with and without the key/value cache, from encoder inputs already embedded (as PaLI's
//! projected image tokens + prompt would be), excluding start-up.

use crate::error::Result;
use palisade_model::decoding::{generate, GenerateConfig, Strategy};
use palisade_model::t5::{T5Config, T5Model};
use serde::Serialize;
use tch::{nn, Device, Kind, Tensor};

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

/// Sizes of the decode benchmark.
#[derive(Debug, Clone, Copy)]
pub struct DecodeShape {
    /// Examples per call.
    pub batch: usize,
    /// Encoder tokens (visual + prompt).
    pub enc_len: usize,
    /// Tokens generated per example (EOS is disabled so every call makes exactly this many).
    pub new_tokens: usize,
    /// Beam size of the beam runs.
    pub beams: usize,
    /// Timed repetitions.
    pub repeats: usize,
}

/// Times greedy and beam generation, cache on and off, for a random model of `cfg`'s sizes.
pub fn decode(cfg: &T5Config, shape: DecodeShape, threads: usize) -> Result<Vec<DecodeBench>> {
    crate::setup::set_threads(threads);
    let mut cfg = cfg.clone();
    cfg.eos_token_id = -1; // never produced: every call generates exactly `new_tokens`
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let lm = T5Model::new(vs.root(), &cfg);
    let embeds = Tensor::randn(
        [shape.batch as i64, shape.enc_len as i64, cfg.d_model as i64],
        (Kind::Float, Device::Cpu),
    );
    let mask = Tensor::ones(
        [shape.batch as i64, shape.enc_len as i64],
        (Kind::Int64, Device::Cpu),
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
            let (ms, _) = crate::timing::median_mean_ms(1, shape.repeats, || {
                let enc = tch::no_grad(|| lm.encode(&embeds, &mask));
                generate(&lm, &enc, &mask, &gc)?;
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
