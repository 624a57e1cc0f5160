"""The reference for `palisade bench all-reduce`: torch.distributed's float32 all-reduce (gloo,
CPU) at the same sizes, timed the same way (median of timed calls after warm-up), one JSON line
per size on rank 0. Run under torchrun: torchrun --nproc-per-node 2 benchmarks/all_reduce.py."""

import argparse
import json
import time

import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", default="0.25,1,4,16,64")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    dist.init_process_group("gloo")
    n, rank = dist.get_world_size(), dist.get_rank()
    for mib in [float(x) for x in a.mib.split(",")]:
        elements = max(1, round(mib * (1 << 20) / 4))
        t = torch.ones(elements)
        dist.barrier()
        times = []
        for i in range(a.warmup + a.iters):
            start = time.perf_counter()
            dist.all_reduce(t)
            if i >= a.warmup:
                times.append((time.perf_counter() - start) * 1000)
        times.sort()
        ms = times[len(times) // 2]
        algbw = elements * 4 / (ms / 1000) / 1e9
        if rank == 0:
            print(json.dumps({"backend": "torch gloo", "ranks": n, "bytes": elements * 4,
                              "ms_median": ms, "algbw_gbps": algbw,
                              "busbw_gbps": algbw * 2 * (n - 1) / n}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
