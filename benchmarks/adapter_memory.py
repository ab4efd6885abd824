"""Memory of N LoRA adapters served on one shared MiniLM, against N full MiniLM copies.

    HF_HUB_OFFLINE=1 python benchmarks/adapter_memory.py ADAPTER_VERSION_FOLDER [--n 8]

ADAPTER_VERSION_FOLDER is a model-store version (or packaged head) with ``adapter/``. Each figure is
measured in a fresh subprocess: resident set size (RSS) after loading, minus the RSS before loading,
plus the exact bytes of the tensors held.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(mode: str, folder: str, n: int) -> dict:
    import copy
    from pathlib import Path

    import torch

    from verticals.builtin import MINILM
    from verticals.core.models.host import ModelHost

    torch.set_grad_enabled(False)
    before = rss_mb()
    host = ModelHost({"minilm": MINILM})
    encoder = host.get("minilm")
    base_bytes = sum(p.numel() * p.element_size() for p in encoder.model.parameters())
    tensors = base_bytes
    if mode == "adapters":
        for i in range(n):
            encoder.add_adapter(f"a{i}", Path(folder) / "adapter")
        encoder.embed(["warm up"], adapter="a0")  # a lone adapter is merged at its first use
        # one adapter is served merged (its target weights copied), several through the hooks (matrices only)
        tensors += sum(encoder.adapter_bytes(f"a{i}") for i in range(n))
    else:
        copies = [encoder.model] + [copy.deepcopy(encoder.model) for _ in range(n - 1)]
        tensors = base_bytes * len(copies)
        encoder.embed(["warm up"])
    return {"mode": mode, "n": n, "rss_mb": round(rss_mb() - before, 1), "tensor_mb": round(tensors / 2**20, 2),
            "base_mb": round(base_bytes / 2**20, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--child", choices=["adapters", "copies"])
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.n)))
        return
    for mode in ("adapters", "copies"):
        for n in (1, args.n):
            out = subprocess.run([sys.executable, __file__, args.folder, "--n", str(n), "--child", mode],
                                 capture_output=True, text=True, check=True)
            print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
