"""The train/test split of the pair tasks (modular arithmetic, group composition), read from
the split a run stores (:meth:`workbench.runs.RunHandle.split`): which pairs ``(a, b)`` the
model trained on, as a ``[n, n]`` mask over the elements in vocabulary order.

The core may not import ``training``; it needs neither the task's code nor its defaults, only
the run's own data.
"""

from __future__ import annotations

import torch

from workbench.errors import UserError

SEP = "="  # the pair tasks' query token, not an element


def pair_train_mask(split: dict[str, torch.Tensor], meta: dict) -> torch.Tensor:
    """``[n, n]`` bool, rows ``a``, columns ``b``: True where ``[a, b, =]`` is a train input.

    ``split``/``meta`` as :meth:`~workbench.runs.RunHandle.split` returns them; the elements
    are the input vocabulary without ``=``, in order.
    """
    vocab = list(meta.get("input_vocab") or [])
    elements = [i for i, t in enumerate(vocab) if t != SEP]
    index = torch.full((len(vocab),), -1, dtype=torch.long)
    index[elements] = torch.arange(len(elements))
    x = split["train_x"]  # [n_train, 3]: a, b, =
    if x.ndim != 2 or x.shape[1] < 2 or not len(elements):
        raise UserError(f"the stored split is not one of pairs (inputs of shape "
                        f"{tuple(x.shape)})")
    a, b = index[x[:, 0]], index[x[:, 1]]  # [n_train]
    if (a < 0).any() or (b < 0).any():
        raise UserError("the stored split's inputs are not pairs of elements")
    n = len(elements)
    mask = torch.zeros(n, n, dtype=torch.bool)  # [n, n]
    mask[a, b] = True
    return mask


__all__ = ["pair_train_mask"]
