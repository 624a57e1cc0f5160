"""Builds small random transformers T5ForConditionalGeneration models (T5 v1.0: ReLU, tied and
rescaled head; v1.1/UL2: gated-GELU, untied) and writes each with inputs and its logits.

Usage: python t5_parity.py OUT_DIR
Writes OUT_DIR/{relu,gated}/hf (save_pretrained), inputs.safetensors, expected.safetensors.
"""
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration


def build(out: Path, ff: str, tied: bool) -> None:
    torch.manual_seed(1)
    cfg = T5Config(vocab_size=97, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   feed_forward_proj=ff, tie_word_embeddings=tied, dropout_rate=0.0, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (p.shape[-1] ** -0.5 if p.dim() > 1 and p.shape[-1] > 8 else 0.5))
        if not tied:
            # A louder EOS row, so that generation ends early in some beams and the oracles
            # exercise finished hypotheses and length normalisation.
            model.lm_head.weight[cfg.eos_token_id] *= 4.0
    model.save_pretrained(out / "hf")
    # Long enough (30 tokens) that relative distances reach the logarithmic buckets.
    input_ids = torch.randint(2, 97, (2, 30))
    attention_mask = torch.ones(2, 30, dtype=torch.long)
    attention_mask[1, 22:] = 0
    decoder_input_ids = torch.randint(2, 97, (2, 25))
    decoder_input_ids[:, 0] = 0
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids).logits
    save_file({"input_ids": input_ids, "attention_mask": attention_mask, "decoder_input_ids": decoder_input_ids},
              out / "inputs.safetensors")
    expected = {"logits": logits.contiguous()}
    # Generation oracles: greedy and beam search, as token ids after the start token (-1 padded).
    for name, beams in [("greedy", 1), ("beam3", 3)]:
        with torch.no_grad():
            gen = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=False, num_beams=beams,
                                 max_new_tokens=12, length_penalty=1.0, early_stopping=False, min_length=0,
                                 use_cache=False)  # 4.57's cache assumes equal encoder and decoder depth
        rows = []
        for row in gen[:, 1:].tolist():
            cut = row.index(cfg.eos_token_id) if cfg.eos_token_id in row else len(row)
            rows.append(row[:cut] + [-1] * (12 - cut))
        expected[name] = torch.tensor(rows, dtype=torch.long)
    save_file(expected, out / "expected.safetensors")


if __name__ == "__main__":
    root = Path(sys.argv[1])
    build(root / "relu", "relu", True)
    build(root / "gated", "gated-gelu", False)
