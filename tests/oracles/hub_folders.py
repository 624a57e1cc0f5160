"""Builds model folders the way the hub has them — config.json with the defaults left out (what
save_pretrained writes), weights in several bf16 safetensors shards with an index — with inputs
and transformers' outputs for them, and checks folders palisade exported.

Usage:
  hub_folders.py siglip OUT {base,so400m,tiny}   SigLIP base/16 at 224, so400m/14 at 384, or a tiny
                                                 one; one layer per tower. Writes OUT/hf, OUT/vision
                                                 (a SiglipVisionModel), inputs/expected(_vision).safetensors
  hub_folders.py t5 OUT                          a gated-silu untied T5 (UL2-style) whose 128-row
                                                 vocabulary pads a SentencePiece tokenizer trained here
                                                 (OUT/hf/spiece.model, tokenizer.json); inputs,
                                                 expected.safetensors, ids.json (texts and their ids)
  hub_folders.py umt5 OUT                        a tiny umT5 (bias in every layer), inputs, expected
  hub_folders.py check-siglip DIR INPUTS EXPECTED  loads DIR with SiglipModel and compares
  hub_folders.py check-vision DIR INPUTS EXPECTED  loads DIR with SiglipVisionModel and compares
  hub_folders.py check-t5 DIR INPUTS EXPECTED      loads DIR with T5ForConditionalGeneration and compares
Each check prints the largest relative difference.
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SHAPES = {
    # (vision: hidden, mlp, heads, image, patch), (text: hidden, mlp, heads, vocab, max_len);
    # everything else left at transformers' defaults, so the saved config.json omits it.
    "base": ((768, 3072, 12, 224, 16), (768, 3072, 12, 32000, 64)),
    "so400m": ((1152, 4304, 16, 384, 14), (1152, 4304, 16, 32000, 64)),
    "tiny": ((64, 128, 4, 32, 8), (64, 128, 4, 200, 16)),
}


def randomise(model):
    """transformers' init leaves many weights tiny; make every part matter."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.dim() < 2 else p.shape[-1] ** -0.5))


def save_hub(model, out: Path, shard: str):
    """As the hub stores big models: bf16, sharded, config.json without the defaults (as
    google/siglip-base-patch16-224's `"vision_config": {"model_type": …, "patch_size": 16}`)."""
    model.to(torch.bfloat16).save_pretrained(out, max_shard_size=shard, safe_serialization=True)
    path = out / "config.json"
    cfg = json.loads(path.read_text())
    keep = {"model_type", "architectures"}

    def strip(d, defaults):
        return {k: v for k, v in d.items() if k in keep or k not in defaults or defaults[k] != v}

    defaults = type(model.config)().to_dict()
    for sub, sub_cls in getattr(type(model.config), "sub_configs", {}).items():
        if sub in cfg:
            cfg[sub] = strip(cfg[sub], sub_cls().to_dict())
            defaults.pop(sub, None)
    path.write_text(json.dumps(strip(cfg, defaults), indent=2))


def siglip(out: Path, shape: str):
    from transformers import SiglipConfig, SiglipModel, SiglipVisionModel

    (vh, vm, vheads, image, patch), (th, tm, theads, vocab, max_len) = SHAPES[shape]
    torch.manual_seed(0)
    vision = dict(hidden_size=vh, intermediate_size=vm, num_attention_heads=vheads, image_size=image,
                  patch_size=patch, num_hidden_layers=1)
    text = dict(hidden_size=th, intermediate_size=tm, num_attention_heads=theads, vocab_size=vocab,
                max_position_embeddings=max_len, num_hidden_layers=1)
    model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).eval()
    randomise(model)
    with torch.no_grad():
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-3.0)
    shard = "20MB" if shape != "tiny" else "100KB"
    save_hub(model, out / "hf", shard)
    # The reference runs the stored (bf16-rounded) weights in fp32, as palisade does.
    model = SiglipModel.from_pretrained(out / "hf", torch_dtype=torch.float32).eval()
    pixel_values = torch.rand(2, 3, image, image) * 2 - 1
    input_ids = torch.randint(0, vocab, (3, max_len))
    save_siglip_case(model, out, pixel_values, input_ids)
    tower = SiglipVisionModel(model.config.vision_config).eval()
    tower.vision_model.load_state_dict(model.vision_model.state_dict())
    save_hub(tower, out / "vision", shard)
    tower = SiglipVisionModel.from_pretrained(out / "vision", torch_dtype=torch.float32).eval()
    with torch.no_grad():
        v = tower(pixel_values=pixel_values)
    save_file({"pixel_values": pixel_values}, out / "inputs_vision.safetensors")
    save_file({"last_hidden_state": v.last_hidden_state.contiguous(),
               "pooler_output": v.pooler_output.contiguous()}, out / "expected_vision.safetensors")
    print(json.dumps({"config": json.loads((out / "hf" / "config.json").read_text()),
                      "files": sorted(p.name for p in (out / "hf").iterdir())}))


# Texts like the synthetic scenes' (captions, questions, answers, expressions).
WORDS = ["a", "the", "red", "green", "blue", "yellow", "purple", "white", "circle", "square",
         "triangle", "cross", "small", "large", "top", "bottom", "left", "right", "center", "on",
         "and", "is", "there", "what", "colour", "where", "how", "many", "shapes", "are", "one",
         "two", "three", "of", "in", "caption", "answer", "detect", "en", "?", "0", "1", "2", "3",
         "4", "5", "6", "7", "8", "9"]


def corpus(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    lines = []
    for _ in range(n):
        k = int(torch.randint(3, 10, (1,), generator=g))
        idx = torch.randint(0, len(WORDS), (k,), generator=g).tolist()
        lines.append(" ".join(WORDS[i] for i in idx))
    return lines


def t5(out: Path):
    import sentencepiece as spm
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer, T5TokenizerFast

    hf = out / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    text = out / "corpus.txt"
    text.write_text("\n".join(corpus(2000, 0)) + "\n")
    # T5's SentencePiece settings: pad 0, eos 1, unk 2, no bos.
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(out / "spiece"), vocab_size=60,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   character_coverage=1.0)
    slow = T5Tokenizer(vocab_file=str(out / "spiece.model"), legacy=True)
    # As the hub's T5 tokenizer.json files have it (`"add_prefix_space": true`): a word start
    # before the first word too, as SentencePiece itself does.
    fast = T5TokenizerFast(vocab_file=str(out / "spiece.model"), add_prefix_space=True)
    pieces = len(slow)  # 120 pieces + 100 extra ids
    rows = ((pieces + 63) // 64) * 64  # padded, as T5's 32,128 rows for 32,100 pieces
    torch.manual_seed(1)
    cfg = T5Config(vocab_size=rows, d_model=64, d_kv=16, d_ff=96, num_layers=2, num_decoder_layers=2,
                   num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   feed_forward_proj="gated-silu", tie_word_embeddings=False, dropout_rate=0.0,
                   decoder_start_token_id=0)
    model = T5ForConditionalGeneration(cfg).eval()
    randomise(model)
    save_hub(model, hf, "60KB")
    fast.save_pretrained(hf)
    (hf / "spiece.model").write_bytes((out / "spiece.model").read_bytes())
    model = T5ForConditionalGeneration.from_pretrained(hf, torch_dtype=torch.float32).eval()
    texts = corpus(6, 7) + ["a red  circle ", "what colour is the square?", "Unseen Words: xyz 42"]
    enc = [fast(t).input_ids for t in texts]
    assert enc == [slow(t).input_ids for t in texts], "slow and fast T5 tokenizers disagree"
    input_ids = torch.tensor([ids[:6] + [0] * (6 - len(ids[:6])) for ids in enc[:2]])
    attention_mask = (input_ids != 0).long()
    decoder_input_ids = torch.randint(2, pieces, (2, 5))
    save_t5_case(model, out, input_ids, attention_mask, decoder_input_ids)
    (out / "ids.json").write_text(json.dumps({"texts": texts, "ids": enc, "pieces": pieces, "rows": rows}))
    print(json.dumps({"config": json.loads((hf / "config.json").read_text()), "pieces": pieces, "rows": rows,
                      "files": sorted(p.name for p in hf.iterdir())}))


def umt5(out: Path):
    """A tiny umT5 (a relative-position bias in every layer; tied by default) and its logits."""
    from transformers import UMT5Config, UMT5ForConditionalGeneration

    torch.manual_seed(2)
    cfg = UMT5Config(vocab_size=96, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=2,
                     num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                     dropout_rate=0.0, decoder_start_token_id=0)
    model = UMT5ForConditionalGeneration(cfg).eval()
    randomise(model)
    save_hub(model, out / "hf", "20KB")
    model = UMT5ForConditionalGeneration.from_pretrained(out / "hf", torch_dtype=torch.float32).eval()
    input_ids = torch.randint(2, 96, (2, 25))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 20:] = 0
    decoder_input_ids = torch.randint(2, 96, (2, 6))
    save_t5_case(model, out, input_ids, attention_mask, decoder_input_ids)
    print(json.dumps({"config": json.loads((out / "hf" / "config.json").read_text())}))


def save_t5_case(model, out: Path, input_ids, attention_mask, decoder_input_ids):
    """Writes the inputs and the model's logits on them (OUT/inputs, OUT/expected)."""
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask,
                       decoder_input_ids=decoder_input_ids).logits
    save_file({"input_ids": input_ids, "attention_mask": attention_mask,
               "decoder_input_ids": decoder_input_ids}, out / "inputs.safetensors")
    save_file({"logits": logits.contiguous()}, out / "expected.safetensors")


def save_siglip_case(model, out: Path, pixel_values, input_ids):
    """Writes the inputs and a SiglipModel's embeddings and logits on them."""
    with torch.no_grad():
        o = model(pixel_values=pixel_values, input_ids=input_ids)
    save_file({"pixel_values": pixel_values, "input_ids": input_ids}, out / "inputs.safetensors")
    save_file({
        "image_embeds": o.image_embeds.contiguous(),
        "text_embeds": o.text_embeds.contiguous(),
        "logits_per_image": o.logits_per_image.contiguous(),
        "logits_per_text": o.logits_per_text.contiguous(),
    }, out / "expected.safetensors")


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def check(kind: str, d: Path, inputs: Path, expected: Path):
    from transformers import SiglipModel, SiglipVisionModel, T5ForConditionalGeneration

    x, want = load_file(inputs), load_file(expected)
    if kind == "siglip":
        o = SiglipModel.from_pretrained(d, torch_dtype=torch.float32).eval()(**x)
        got = {k: getattr(o, k) for k in want}
    elif kind == "vision":
        o = SiglipVisionModel.from_pretrained(d, torch_dtype=torch.float32).eval()(**x)
        got = {k: getattr(o, k) for k in want}
    else:
        o = T5ForConditionalGeneration.from_pretrained(d, torch_dtype=torch.float32).eval()(**x)
        got = {"logits": o.logits}
    print(json.dumps({k: rel(got[k].detach(), want[k]) for k in want}))


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "siglip":
        siglip(Path(rest[0]), rest[1])
    elif cmd == "t5":
        t5(Path(rest[0]))
    elif cmd == "umt5":
        umt5(Path(rest[0]))
    elif cmd.startswith("check-"):
        check(cmd[len("check-"):], Path(rest[0]), Path(rest[1]), Path(rest[2]))
    else:
        sys.exit(f"unknown command {cmd}")
