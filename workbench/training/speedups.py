"""Speed fixes the engine applies on top of stock TRL; each one is measured in benchmarks/NOTES.md."""
from __future__ import annotations


def score_only_trained_positions() -> bool:
    """Make TRL's fused LM head project only the positions that carry the loss, on every device but XLA.

    TRL 1.x does that only on Triton devices (CUDA/XPU); elsewhere it projects every position through the
    49k-word vocabulary so that XLA/Neuron compilers see fixed tile shapes. In eager mode on a CPU nothing is
    compiled, and most positions are prompt or padding (89% in the benchmark's reverse-instruction data):
    scoring only the trained ones took a LoRA step on the default model from 77.7 to 117.6 tokens/s and
    its peak RSS from 7.7 to 5.5 GB. The loss and gradients are the same (tests/test_speedups.py). Returns
    False when this TRL no longer has the hook, so the run goes on at stock speed.
    """
    import trl.trainer.utils as trl_utils

    stock = getattr(trl_utils, "_use_triton", None)
    if stock is None:
        return False
    if getattr(stock, "workbench_patched", False):
        return True

    def compact(device) -> bool:  # TRL reads this only to choose compact vs every-position scoring
        return device.type != "xla" or stock(device)

    compact.workbench_patched, compact.stock = True, stock
    trl_utils._use_triton = compact
    return True
