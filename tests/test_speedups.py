"""The engine's speed fixes leave the loss and the gradients exactly as stock TRL computes them."""
from __future__ import annotations

import torch
import trl.trainer.utils as trl_utils
from peft import LoraConfig, get_peft_model
from trl.trainer.utils import add_fused_lm_head

from workbench.models.load import load_model
from workbench.training.setup import score_only_trained_positions


def loss_grads_and_scored_rows(model, ids, labels, monkeypatch):
    """One fused-head training step: the loss, the LoRA gradients and how many rows the LM head projected."""
    scored = []
    stock_apply = trl_utils._ChunkedLogProbFunction.apply

    def spy(hidden, *args):
        scored.append(hidden.shape[0])
        return stock_apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    model.zero_grad()
    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    loss = -out.log_probs.sum() / out.label_mask.sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", stock_apply)
    return loss.item(), grads, scored[0]


def test_scoring_only_trained_positions_keeps_the_loss_and_gradients(model_dir, monkeypatch):
    # Start from stock TRL even when an earlier test's training applied the patch; restored after the test.
    monkeypatch.setattr(trl_utils, "_use_triton", getattr(trl_utils._use_triton, "stock", trl_utils._use_triton))
    torch.manual_seed(0)
    model = load_model(str(model_dir)).model
    add_fused_lm_head(model)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False,
                                             task_type="CAUSAL_LM"))
    model.train()
    ids = torch.randint(100, 40000, (2, 24))
    labels = ids.clone()
    labels[0, :15], labels[1, :5], labels[1, 20:] = -100, -100, -100  # prompts and padding carry no loss
    trained = int((labels[:, 1:] != -100).sum())

    stock_loss, stock_grads, stock_rows = loss_grads_and_scored_rows(model, ids, labels, monkeypatch)
    assert score_only_trained_positions()
    fast_loss, fast_grads, fast_rows = loss_grads_and_scored_rows(model, ids, labels, monkeypatch)

    assert stock_rows == 2 * 23 and fast_rows == trained == 9 + 15  # every position vs the trained ones
    assert abs(fast_loss - stock_loss) < 1e-5
    assert stock_grads.keys() == fast_grads.keys()
    for name, grad in stock_grads.items():
        torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
