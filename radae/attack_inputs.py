"""What an attack run starts from: the attacked test images and their targets, and the model frozen for it.

Shared by the evaluation (:mod:`radae.evaluate`) and the robustness probe along training
(:mod:`radae.probe`), so both pick images the same way.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def pick_images(labels: torch.Tensor, n: int, seed: int, by_class: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` random test indices and, per index, a random target of another class; any other image
    when ``by_class`` is False (CelebA: "random other image", method.md) or every label is the same."""
    gen = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    idx = torch.randperm(len(labels), generator=gen)[:n]
    any_other = not by_class or bool((labels == labels[0]).all())
    targets = []
    for i in idx.tolist():
        allowed = (torch.arange(len(labels)) != i) if any_other else (labels != labels[i])
        choices = allowed.nonzero().flatten()
        targets.append(int(choices[torch.randint(len(choices), (1,), generator=gen)]))
    return idx, torch.tensor(targets)


@contextmanager
def frozen(model: torch.nn.Module):
    """Eval mode without parameter gradients for the evaluation; the caller's flags come back after."""
    flags = [p.requires_grad for p in model.parameters()]
    training = model.training
    model.eval().requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        model.train(training)
