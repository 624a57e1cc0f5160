"""PyTorch eager baseline for `palisade bench pali-train-step`: transformers' SiglipVisionModel,
a linear projector and T5ForConditionalGeneration fed `[projected image tokens ; prompt]` as
inputs_embeds, token cross-entropy on the target, AdamW (weight decay on matrices only) and
global-norm clipping; the ViT is frozen unless --train-vision.

Usage:
  palisade bench pali-train-step --preset tiny --model-config-out /tmp/pali.json
  python benchmarks/pali_train_step.py /tmp/pali.json --batch 16 --prompt-len 16 --target-len 16 --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch_device
from transformers import SiglipVisionConfig, SiglipVisionModel, T5Config, T5ForConditionalGeneration


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--target-len", type=int, default=16)
    ap.add_argument("--train-vision", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast, fused AdamW)")
    a = ap.parse_args()
    dev, autocast = torch_device.setup(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = json.load(open(a.config))
    vision = SiglipVisionModel(SiglipVisionConfig(**{k: v for k, v in cfg["vision_config"].items() if k != "model_type"}))
    tc = {k: v for k, v in cfg["text_config"].items() if k != "model_type"}
    t5 = T5ForConditionalGeneration(T5Config(**tc))
    proj = torch.nn.Linear(vision.config.hidden_size, t5.config.d_model)
    vision, t5, proj = vision.to(dev), t5.to(dev), proj.to(dev)
    vision.requires_grad_(a.train_vision)
    modules = [("proj", proj), ("t5", t5)] + ([("vision", vision)] if a.train_vision else [])
    named = [(f"{m}.{n}", p) for m, mod in modules for n, p in mod.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if p.dim() >= 2 and "embed" not in n and "shared" not in n]
    no_decay = [p for n, p in named if not (p.dim() >= 2 and "embed" not in n and "shared" not in n)]
    opt = torch_device.adamw([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], 1e-4, dev)
    params = [p for _, p in named]
    s, v = vision.config.image_size, t5.config.vocab_size
    pixels = torch.rand(a.batch, 3, s, s, device=dev) * 2 - 1
    ids = torch.randint(2, v, (a.batch, a.prompt_len), device=dev)
    labels = torch.randint(2, v, (a.batch, a.target_len), device=dev)
    times, updates = [], []
    for i in range(a.warmup + a.steps):
        start = time.perf_counter()
        with autocast():
            with torch.set_grad_enabled(a.train_vision):
                vis = vision(pixel_values=pixels).last_hidden_state
            emb = torch.cat([proj(vis), t5.shared(ids)], 1)
            mask = torch.ones(emb.shape[:2], dtype=torch.long, device=dev)
            loss = t5(inputs_embeds=emb, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch_device.sync(dev)
        update = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch_device.sync(dev)
        if i >= a.warmup:
            times.append((time.perf_counter() - start) * 1000)
            updates.append((time.perf_counter() - update) * 1000)
    med = statistics.median(times)
    print(json.dumps({"impl": "pytorch-eager transformers SiglipVisionModel+T5", "params": sum(p.numel() for p in params),
                      "batch_size": a.batch, "threads": torch.get_num_threads(), "device": str(dev), "steps": a.steps,
                      "ms_per_step_median": med, "update_ms_median": statistics.median(updates), "examples_per_sec": a.batch * 1000 / med}))


if __name__ == "__main__":
    main()
