"""Computes PaLI logits with transformers parts: SiglipVisionModel (weights from a palisade PaLI
folder), the linear projector, and T5ForConditionalGeneration loaded from the folder exported
by `palisade pali export-t5`, fed `inputs_embeds = [projected visual tokens ; embedded prompt]`.

Usage: python pali_parity.py PALI_DIR T5_DIR INPUTS.safetensors OUT.safetensors [RESIZED_DIR]
With RESIZED_DIR, also writes `posemb` = the position embedding of PALI_DIR resized to
RESIZED_DIR's grid by torch's bilinear interpolation (align_corners=False).
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import SiglipVisionConfig, SiglipVisionModel, T5ForConditionalGeneration


def main(pali: Path, t5_dir: Path, inputs: Path, out: Path, resized: Path | None) -> None:
    cfg = json.loads((pali / "config.json").read_text())
    state = load_file(pali / "model.safetensors")
    vcfg = SiglipVisionConfig(**{k: v for k, v in cfg["vision_config"].items() if k != "model_type"})
    vision = SiglipVisionModel(vcfg).eval()
    missing = vision.load_state_dict({k: v for k, v in state.items() if k.startswith("vision_model.")}, strict=False)
    assert not missing.unexpected_keys and all("position_ids" in k for k in missing.missing_keys), missing
    proj = torch.nn.Linear(vcfg.hidden_size, cfg["text_config"]["d_model"])
    proj.load_state_dict({"weight": state["multi_modal_projector.linear.weight"], "bias": state["multi_modal_projector.linear.bias"]})
    t5 = T5ForConditionalGeneration.from_pretrained(t5_dir).eval()
    x = load_file(inputs)
    pixels = x["pixel_values"]
    b = pixels.shape[0]
    if pixels.dim() == 5:  # video: each frame alone, tokens concatenated
        pixels = pixels.reshape(-1, *pixels.shape[2:])
    with torch.no_grad():
        vis = vision(pixel_values=pixels).last_hidden_state
        vis = proj(vis.reshape(b, -1, vis.shape[-1]))
        emb = torch.cat([vis, t5.shared(x["input_ids"])], 1)
        mask = torch.cat([torch.ones(b, vis.shape[1], dtype=torch.long), x["attention_mask"]], 1)
        logits = t5(inputs_embeds=emb, attention_mask=mask, decoder_input_ids=x["decoder_input_ids"]).logits
    result = {"logits": logits.contiguous()}
    if resized is not None:
        new = json.loads((resized / "config.json").read_text())["vision_config"]
        grid = new["image_size"] // new["patch_size"]
        pe = state["vision_model.embeddings.position_embedding.weight"]
        old = int(round(pe.shape[0] ** 0.5))
        g = pe.reshape(1, old, old, -1).permute(0, 3, 1, 2)
        g = torch.nn.functional.interpolate(g, size=(grid, grid), mode="bilinear", align_corners=False)
        result["posemb"] = g.permute(0, 2, 3, 1).reshape(grid * grid, -1).contiguous()
    save_file(result, out)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(Path(a[0]), Path(a[1]), Path(a[2]), Path(a[3]), Path(a[4]) if len(a) > 4 else None)
