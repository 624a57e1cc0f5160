"""PyTorch eager baseline for `palisade bench train-step`: transformers' SiglipModel with the
same sigmoid loss, AdamW (weight decay on matrices only) and global-norm clipping, on random
inputs, timing forward + backward + clip + step.

Usage:
  palisade bench train-step CONFIG --model-config-out /tmp/m.json   # prints palisade's numbers
  python benchmarks/siglip_train_step.py /tmp/m.json --batch 128 --threads 2 --steps 20
"""
import argparse
import json
import statistics
import time

import torch
import torch_device
from transformers import SiglipConfig, SiglipModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast, fused AdamW)")
    ap.add_argument("--adamw", default="default", choices=["default", "foreach", "fused"],
                    help="torch.optim.AdamW's implementation (default: PyTorch's choice for the device)")
    a = ap.parse_args()
    dev, autocast = torch_device.setup(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = SiglipConfig.from_json_file(a.config)
    model = SiglipModel(cfg).to(dev).train()
    with torch.no_grad():
        model.logit_scale.fill_(2.302585)
        model.logit_bias.fill_(-10.0)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embedding" not in n and not n.endswith("probe")]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embedding" not in n and not n.endswith("probe"))]
    opt = torch_device.adamw([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], a.lr, dev, a.adamw)
    v, t = cfg.vision_config, cfg.text_config
    pixels = torch.rand(a.batch, 3, v.image_size, v.image_size, device=dev) * 2 - 1
    ids = torch.randint(0, t.vocab_size, (a.batch, t.max_position_embeddings), device=dev)
    times, updates = [], []
    for i in range(a.warmup + a.steps):
        start = time.perf_counter()
        with autocast():
            out = model(pixel_values=pixels, input_ids=ids, return_loss=True)
        out.loss.backward()
        torch_device.sync(dev)
        update = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch_device.sync(dev)
        if i >= a.warmup:
            times.append((time.perf_counter() - start) * 1000)
            updates.append((time.perf_counter() - update) * 1000)
    med = statistics.median(times)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"impl": "pytorch-eager transformers SiglipModel", "torch": torch.__version__, "adamw": a.adamw, "params": params,
                      "batch_size": a.batch, "threads": torch.get_num_threads(), "device": str(dev), "steps": a.steps,
                      "ms_per_step_median": med, "ms_per_step_mean": statistics.mean(times), "update_ms_median": statistics.median(updates),
                      "examples_per_sec": a.batch * 1000 / med}))


if __name__ == "__main__":
    main()
