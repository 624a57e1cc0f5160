"""PyTorch eager baseline for `palisade bench decode`: transformers' T5ForConditionalGeneration
fed the same encoder input (random `inputs_embeds`, as PaLI's projected image tokens + prompt),
generating exactly N tokens (EOS disabled), greedy and beam, cache on and off.

Usage:
  palisade bench decode --preset t5-v1_1-small --model-config-out /tmp/t5.json
  python benchmarks/t5_decode.py /tmp/t5.json --batch 4 --enc-len 272 --new-tokens 32 --beams 4 --threads 2
"""
import argparse
import json
import statistics
import time

import torch
import torch_device
from transformers import T5Config, T5ForConditionalGeneration


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--enc-len", type=int, default=272)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast)")
    a = ap.parse_args()
    dev, autocast = torch_device.setup(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = T5Config.from_json_file(a.config)
    model = T5ForConditionalGeneration(cfg).to(dev).eval()
    embeds = torch.randn(a.batch, a.enc_len, cfg.d_model, device=dev)
    mask = torch.ones(a.batch, a.enc_len, dtype=torch.long, device=dev)
    for name, beams in [("greedy", 1), (f"beam{a.beams}", a.beams)]:
        for use_cache in [True, False]:
            times = []
            for i in range(a.repeats + 1):
                start = time.perf_counter()
                with torch.no_grad(), autocast():
                    out = model.generate(inputs_embeds=embeds, attention_mask=mask, do_sample=False, num_beams=beams,
                                         max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, eos_token_id=None,
                                         use_cache=use_cache, length_penalty=1.0, early_stopping=False)
                torch_device.sync(dev)
                if i > 0:
                    times.append(time.perf_counter() - start)
            assert out.shape[1] == a.new_tokens + 1, out.shape
            sec = statistics.median(times)
            print(json.dumps({"impl": "transformers generate", "strategy": name, "use_cache": use_cache,
                              "device": str(dev), "seconds": sec, "tokens_per_sec": a.batch * a.new_tokens / sec}))


if __name__ == "__main__":
    main()
