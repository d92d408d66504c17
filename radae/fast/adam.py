"""Adam over stacked parameters: one optimiser state per pack member, one update for all.

The update is ``torch.optim.Adam``'s (Kingma and Ba, Algorithm 1, with PyTorch's ordering of the
bias corrections), so a member's trajectory matches a single model trained with
``torch.optim.Adam(lr, betas, eps)`` up to float reassociation:

    m_t = beta1 m_{t-1} + (1 - beta1) g_t
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    p_t = p_{t-1} - (lr / (1 - beta1^t)) m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

Every tensor has a leading member axis M; ``lr`` is (M,) so each member keeps its own
learning-rate schedule. All updates are in place (static addresses, so a CUDA graph can capture
them), and ``step`` is a tensor on the parameters' device (no host synchronisation).
:func:`member_state_dict` writes one member's state in ``torch.optim.Adam.state_dict`` format, so
a member's checkpoint resumes in the single-trial trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Params = dict[str, torch.Tensor]


@dataclass
class StackedAdam:
    """Adam state for stacked parameters ``{name: (M, ...)}``; ``lr`` (M,), ``step`` (M,)."""

    lr: torch.Tensor
    step: torch.Tensor
    exp_avg: Params
    exp_avg_sq: Params
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    @classmethod
    def create(cls, params: Params, lr: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        """Zero moments (Adam's initial state) for ``params``; ``lr`` one value per member."""
        first = next(iter(params.values()))
        members, device, dtype = first.shape[0], first.device, first.dtype
        if lr.shape != (members,):
            raise ValueError(f"lr must have one entry per member ({members}), got shape {tuple(lr.shape)}")
        return cls(
            lr=lr.to(device=device, dtype=dtype).clone(),
            step=torch.zeros(members, device=device, dtype=dtype),
            exp_avg={k: torch.zeros_like(v) for k, v in params.items()},
            exp_avg_sq={k: torch.zeros_like(v) for k, v in params.items()},
            betas=betas,
            eps=eps,
        )

    @torch.no_grad()
    def update(self, params: Params, grads: Params) -> None:
        """One Adam step for every member, in place on ``params`` and the state."""
        beta1, beta2 = self.betas
        self.step.add_(1.0)
        bias1 = 1.0 - torch.pow(beta1, self.step)
        bias2_sqrt = torch.sqrt(1.0 - torch.pow(beta2, self.step))
        step_size = self.lr / bias1  # (M,)
        for name, p in params.items():
            g = grads[name]
            shape = (-1,) + (1,) * (p.ndim - 1)
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            # p -= step_size * m / denom, with step_size folded into denom (one temporary).
            denom = v.sqrt().div_(bias2_sqrt.view(shape)).add_(self.eps).div_(step_size.view(shape))
            p.addcdiv_(m, denom, value=-1.0)

    def member_state_dict(self, index: int, names: list[str], lr: float | None = None) -> dict:
        """Member ``index``'s state as ``torch.optim.Adam(model.parameters()).state_dict()``.

        ``names`` lists the parameter names in ``model.parameters()`` order (Adam numbers them).
        """
        state = {
            i: {
                "step": self.step[index].detach().cpu().clone(),
                "exp_avg": self.exp_avg[name][index].detach().cpu().clone(),
                "exp_avg_sq": self.exp_avg_sq[name][index].detach().cpu().clone(),
            }
            for i, name in enumerate(names)
        }
        group = {
            "lr": float(self.lr[index]) if lr is None else lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": 0,
            "amsgrad": False,
            "maximize": False,
            "foreach": None,
            "capturable": False,
            "differentiable": False,
            "fused": None,
            "decoupled_weight_decay": False,
            "params": list(range(len(names))),
        }
        return {"state": state, "param_groups": [group]}

    @torch.no_grad()
    def load_member(self, index: int, state_dict: dict, names: list[str]) -> None:
        """Member ``index``'s state from a ``torch.optim.Adam`` state dict (inverse of :meth:`member_state_dict`)."""
        state = state_dict["state"]
        for i, name in enumerate(names):
            if i not in state:  # a parameter never stepped keeps the zero state
                continue
            self.exp_avg[name][index].copy_(state[i]["exp_avg"])
            self.exp_avg_sq[name][index].copy_(state[i]["exp_avg_sq"])
            self.step[index] = float(state[i]["step"])
        self.lr[index] = float(state_dict["param_groups"][0]["lr"])
