"""What this machine offers a training run: free memory, and the matmul speed measured here and now.

The speed is measured rather than looked up because the same CPU model runs at very different speeds with
different core counts, thread settings and neighbours; a GPU this machine does not have gets a nominal figure.
"""
from __future__ import annotations

import functools
import logging
import time

log = logging.getLogger(__name__)

NOMINAL_GPU_TFLOPS = 100.0  # used only to estimate time for a GPU this machine does not have


def device_memory(device: str) -> tuple[float | None, str]:
    """(bytes free for training, label) on this machine's CPU RAM or first GPU; None when there is no GPU."""
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info(0)
            return float(free), f"GPU memory ({torch.cuda.get_device_name(0)})"
        return None, "a GPU"
    import psutil

    return float(psutil.virtual_memory().available), "CPU RAM"


@functools.lru_cache(maxsize=4)
def matmul_flops(device: str) -> float:
    """Measured dense matmul FLOP/s here in the dtype training computes in (float32 on CPU, bf16 on a GPU).

    The best of a few ~0.05 s matmuls, so a briefly busy machine does not skew it; cached for the process, so
    the Train tab's estimate button does not pay for it twice.
    """
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        return NOMINAL_GPU_TFLOPS * 1e12
    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(4):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ a
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    flops = 2 * n ** 3 / max(best, 1e-9)
    log.debug("matmul probe on %s: %.1f GFLOP/s", device, flops / 1e9)
    return flops
