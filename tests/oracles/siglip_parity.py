"""Builds a small random transformers SiglipModel, saves it, and writes inputs and its outputs.

Usage: python siglip_parity.py OUT_DIR
Writes OUT_DIR/hf (save_pretrained), OUT_DIR/inputs.safetensors, OUT_DIR/expected.safetensors.
"""
import sys
from pathlib import Path

import torch
from transformers import SiglipConfig, SiglipModel

from hub_folders import save_siglip_case


def main(out: Path) -> None:
    torch.manual_seed(0)
    cfg = SiglipConfig(
        text_config=dict(vocab_size=99, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=12),
        vision_config=dict(hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                           num_attention_heads=4, image_size=32, patch_size=8),
    )
    model = SiglipModel(cfg).eval()
    # transformers' init leaves scale/bias at 0 and many weights tiny; randomise so every part matters.
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.dim() < 2 else p.shape[-1] ** -0.5))
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-3.0)
    model.save_pretrained(out / "hf")
    pixel_values = torch.rand(3, 3, 32, 32) * 2 - 1
    input_ids = torch.randint(0, 99, (4, 12))
    save_siglip_case(model, out, pixel_values, input_ids)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
