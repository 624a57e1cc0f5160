"""Writes a random T5 of about 1.5B parameters the way the hub stores big checkpoints — bf16,
safetensors shards of at most 2 GB with an index, a config.json without defaults — and, with
--reference, loads it with transformers as the reference for peak memory.

Usage: import_memory.py write DIR | import_memory.py reference DIR
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

D, KV, HEADS, FF, LAYERS, VOCAB = 2048, 64, 32, 5120, 12, 32128


def shapes():
    yield "shared.weight", (VOCAB, D)
    yield "lm_head.weight", (VOCAB, D)
    for stack, n in (("encoder", LAYERS), ("decoder", LAYERS)):
        yield f"{stack}.final_layer_norm.weight", (D,)
        for i in range(n):
            b = f"{stack}.block.{i}.layer"
            attn = ["SelfAttention"] + (["EncDecAttention"] if stack == "decoder" else [])
            for j, a in enumerate(attn):
                for w in "qkvo":
                    yield f"{b}.{j}.{a}.{w}.weight", (HEADS * KV, D) if w != "o" else (D, HEADS * KV)
                yield f"{b}.{j}.layer_norm.weight", (D,)
                if i == 0 and a == "SelfAttention":
                    yield f"{b}.{j}.{a}.relative_attention_bias.weight", (32, HEADS)
            k = len(attn)
            yield f"{b}.{k}.DenseReluDense.wi_0.weight", (FF, D)
            yield f"{b}.{k}.DenseReluDense.wi_1.weight", (FF, D)
            yield f"{b}.{k}.DenseReluDense.wo.weight", (D, FF)
            yield f"{b}.{k}.layer_norm.weight", (D,)


def write(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    shards, shard, size, limit = [], {}, 0, 2 << 30
    for name, shape in shapes():
        t = (torch.randn(shape) * shape[-1] ** -0.5).to(torch.bfloat16)
        if size + t.numel() * 2 > limit and shard:
            shards.append(shard)
            shard, size = {}, 0
        shard[name] = t
        size += t.numel() * 2
    shards.append(shard)
    weight_map, total, params = {}, 0, 0
    for i, s in enumerate(shards):
        f = f"model-{i + 1:05}-of-{len(shards):05}.safetensors"
        save_file(s, out / f, metadata={"format": "pt"})
        for n, t in s.items():
            weight_map[n] = f
            total += t.numel() * 2
            params += t.numel()
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    (out / "config.json").write_text(json.dumps({
        "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": D, "d_kv": KV,
        "d_ff": FF, "num_layers": LAYERS, "num_heads": HEADS, "feed_forward_proj": "gated-silu",
        "tie_word_embeddings": False, "torch_dtype": "bfloat16"}))
    print(json.dumps({"parameters": params, "bytes": total, "shards": len(shards)}))


def reference(d: Path):
    from transformers import T5ForConditionalGeneration

    m = T5ForConditionalGeneration.from_pretrained(d, torch_dtype=torch.float32)
    print(json.dumps({"parameters": sum(p.numel() for p in m.parameters())}))


if __name__ == "__main__":
    {"write": write, "reference": reference}[sys.argv[1]](Path(sys.argv[2]))
