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
    save_file({"logits": logits.contiguous()}, out / "expected.safetensors")


if __name__ == "__main__":
    root = Path(sys.argv[1])
    build(root / "relu", "relu", True)
    build(root / "gated", "gated-gelu", False)
