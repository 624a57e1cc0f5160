"""Device handling shared by the PyTorch baselines: on CUDA, bf16 autocast (as palisade runs
there), fused AdamW and a synchronize before each clock read; on CPU, plain float32 and
torch.optim.AdamW's default there (one tensor at a time: foreach kernels default to GPUs only),
or the `foreach` / `fused` implementation asked for."""
import contextlib

import torch


def setup(name: str):
    """The device and the autocast context to run the model's forward under."""
    dev = torch.device(name)
    if dev.type == "cuda":
        return dev, lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return dev, contextlib.nullcontext


def adamw(groups, lr: float, dev: torch.device, impl: str = "default") -> torch.optim.Optimizer:
    """AdamW as a PyTorch user would pick it on this device, or the implementation `impl`
    (default, foreach, fused)."""
    if impl == "foreach":
        return torch.optim.AdamW(groups, lr=lr, foreach=True)
    if impl == "fused":
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    return torch.optim.AdamW(groups, lr=lr, fused=dev.type == "cuda" or None)


def sync(dev: torch.device) -> None:
    """Waits for queued kernels, so that a step's time covers its work."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
