"""Fit probes for every site (layer / hook) and position at once, batched in torch.

Method: the activations of all ``G = sites x positions`` groups are stacked into one
``[G, n, d]`` tensor, standardised per group with training statistics, and every group's probe
is trained in the same batched matrix products (``torch.baddbmm``), instead of one
scikit-learn fit per layer. Kinds: ``linear`` (closed-form ridge regression; one-hot targets
for classes), ``logistic`` (multiclass softmax regression, L2 penalty ``l2`` on the weights,
full-batch L-BFGS: the objective of scikit-learn's ``LogisticRegression(C=1/(l2 * n))``),
``lowrank:R`` (softmax regression through a rank-R weight ``U V``) and ``mlp`` / ``mlp:H``
(one hidden ReLU layer). Held-out accuracy, or R² for a numeric target; optional control
task (random labels per type, :mod:`probes.targets`) and selectivity = task - control; the
embedding baseline is the probe on layer 0 (``resid.0``).

References: Alain & Bengio 2016 (linear classifier probes), Hewitt & Liang 2019 (control
tasks, selectivity), Belinkov 2022 (probing classifiers survey).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from probes.activations import Activations, load_activations
from probes.logistic import logistic
from probes.targets import Target, control_labels, load_target, split
from workbench.errors import UserError


@dataclass(frozen=True)
class ProbeKind:
    name: str  # linear | logistic | lowrank | mlp
    size: int | None = None  # rank (lowrank) or hidden width (mlp)

    @classmethod
    def parse(cls, spec: str) -> "ProbeKind":
        if spec in ("linear", "logistic"):
            return cls(spec)
        if m := re.fullmatch(r"lowrank:(\d+)", spec):
            if int(m.group(1)) < 1:
                raise UserError(f"probe rank must be positive, got {spec!r}")
            return cls("lowrank", int(m.group(1)))
        if m := re.fullmatch(r"mlp(?::(\d+))?", spec):
            return cls("mlp", int(m.group(1) or 64))
        raise UserError(f"unknown probe kind {spec!r}: use linear, logistic, lowrank:R or mlp")


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """Scores per site (rows) and position (columns); ``metric`` is accuracy or r2."""

    target: str
    task: str
    metric: str
    kind: str
    sites: tuple[str, ...]
    positions: tuple[str, ...]
    n_train: int
    n_test: int
    n_classes: int | None
    untested_classes: int  # classes with no test example (allowed with allow_untested_classes)
    classes: tuple[str, ...] | None  # class names, in the order of the probe's outputs
    chance: float  # test accuracy of the majority class (0 for R²)
    train_score: list[list[float]]
    test_score: list[list[float]]
    control_score: list[list[float]] | None = None
    selectivity: list[list[float]] | None = None
    embedding_baseline: list[float] | None = None  # test score of resid.0 per position
    split_by: str | None = None
    test_fraction: float = 0.3
    seed: int = 0
    model: dict = field(default_factory=dict)
    # per group [S, P, d, C] weights and [S, P, C] biases in activation space (not in JSON)
    weights: torch.Tensor | None = field(default=None, repr=False, compare=False)
    biases: torch.Tensor | None = field(default=None, repr=False, compare=False)
    test_index: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def best(self) -> dict:
        flat = [(v, s, p) for s, row in zip(self.sites, self.test_score)
                for p, v in zip(self.positions, row)]
        v, s, p = max(flat)
        return {"site": s, "position": p, "test_score": v}

    def to_json(self) -> dict:
        skip = {"weights", "biases", "test_index"}
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in skip}
        out["best"] = self.best
        return out


def _score(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Per group score: accuracy (logits [G, n, C]) or R² (predictions [G, n, 1])."""
    if task == "classify":
        return (logits.argmax(-1) == y).float().mean(-1)
    pred = logits[..., 0]
    sse = ((pred - y) ** 2).sum(-1)
    sst = ((y - y.mean(-1, keepdim=True)) ** 2).sum(-1).clamp_min(1e-12)
    return 1 - sse / sst


def _lbfgs(params: list[torch.Tensor], loss_fn, max_iter: int, *, manual: bool = False,
           tolerance_grad: float = 1e-4) -> None:
    """Full-batch L-BFGS; stops when every gradient entry is below ``tolerance_grad`` (the
    objective is a mean over examples, as scikit-learn's lbfgs ``tol`` reads it)."""
    opt = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, history_size=20,
                            tolerance_grad=tolerance_grad, tolerance_change=1e-10,
                            line_search_fn="strong_wolfe")

    def closure():
        if manual:  # loss_fn sets the gradients itself
            return loss_fn()
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss
    opt.step(closure)


def fit_batched(x: torch.Tensor, y: torch.Tensor, *, kind: ProbeKind, task: str,
                n_out: int, l2: float, max_iter: int = 200, seed: int = 0,
                scale: torch.Tensor | None = None):
    """Train one probe per group: ``x`` [G, n, d] standardised, or centred with per-feature
    standard deviations ``scale`` [G, d] (the probe is then that of the standardised inputs
    ``x / scale``; the logistic kind never materialises them), ``y`` [G, n].

    Returns ``predict(x_new [G, m, d]) -> [G, m, n_out]`` and the linear map ``(W [G, d,
    n_out], b [G, n_out])`` on ``x``'s own scale where the probe is linear (None for mlp).
    """
    if kind.name == "logistic":
        if task != "classify":
            raise UserError("a logistic probe needs a categorical target; use linear for a "
                            "numeric one")
        return logistic(x, F.one_hot(y, n_out).float(), l2=l2, max_iter=max_iter, scale=scale)
    if scale is not None:  # the other kinds train on the standardised inputs themselves
        inv = (1.0 / scale)[:, None, :]  # [G, 1, d]
        predict, linear = fit_batched(x * inv, y, kind=kind, task=task, n_out=n_out, l2=l2,
                                      max_iter=max_iter, seed=seed)
        if linear is not None:
            linear = (linear[0] * inv.transpose(1, 2), linear[1])
        return (lambda z: predict(z * inv)), linear
    g, n, d = x.shape
    dev = x.device
    gen = torch.Generator().manual_seed(seed)  # on the CPU, so every device draws alike
    target = F.one_hot(y, n_out).float() if task == "classify" else y[..., None]  # [G, n, C]
    if kind.name == "linear":
        xa = torch.cat([x, torch.ones(g, n, 1, device=dev)], -1)  # [G, n, d+1]
        gram = xa.transpose(1, 2) @ xa + l2 * n * torch.eye(d + 1, device=dev)  # [G, d+1, d+1]
        w = torch.linalg.solve(gram, xa.transpose(1, 2) @ target)  # [G, d+1, n_out]
        wl, bl = w[:, :d], w[:, d]
        return (lambda z: torch.baddbmm(bl[:, None], z, wl)), (wl, bl)
    if task == "classify":
        def loss_of(out):
            return F.cross_entropy(out.reshape(-1, n_out), y.reshape(-1), reduction="sum") / n
    else:
        def loss_of(out):
            return ((out[..., 0] - y) ** 2).sum() / n
    if kind.name == "lowrank":
        r = kind.size
        u = (torch.randn(g, d, r, generator=gen).to(dev) / d ** 0.5).requires_grad_()
        v = (torch.randn(g, r, n_out, generator=gen).to(dev) / r ** 0.5).requires_grad_()
        b = torch.zeros(g, 1, n_out, device=dev, requires_grad=True)
        _lbfgs([u, v, b], lambda: loss_of(torch.baddbmm(b, x @ u, v))
               + 0.5 * l2 * ((u ** 2).sum() + (v ** 2).sum()), max_iter)
        w, b = (u @ v).detach(), b.detach()[:, 0]
        return (lambda z: torch.baddbmm(b[:, None], z, w)), (w, b)
    h = kind.size
    w1 = (torch.randn(g, d, h, generator=gen).to(dev) * (2 / d) ** 0.5).requires_grad_()
    b1 = torch.zeros(g, 1, h, device=dev, requires_grad=True)
    w2 = (torch.randn(g, h, n_out, generator=gen).to(dev) / h ** 0.5).requires_grad_()
    b2 = torch.zeros(g, 1, n_out, device=dev, requires_grad=True)

    def mlp(z):
        return torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, z, w1)), w2)
    _lbfgs([w1, b1, w2, b2], lambda: loss_of(mlp(x)) + 0.5 * l2 * ((w1 ** 2).sum()
                                                                   + (w2 ** 2).sum()), max_iter)
    params = [p.detach() for p in (w1, b1, w2, b2)]

    def predict(z):
        return torch.baddbmm(params[3], torch.relu(torch.baddbmm(params[1], z, params[0])),
                             params[2])
    return predict, None


MAX_BLOCK_BYTES = 1 << 30  # activations fitted together; a fit holds about twice a block


def _blocks(acts: Activations, sites: Sequence[str], device):
    """``(groups, x [B, n, d])``: the (site, position) groups ``g = s * P + p`` in blocks of at
    most :data:`MAX_BLOCK_BYTES` of activations, so that what a fit holds beyond the
    activations themselves is bounded whatever the number of layers and positions (every
    group's probe is its own problem: blocks give the same probes as one batch)."""
    n_pos = len(acts.positions)
    n, d = acts.n, acts.acts[sites[0]].shape[-1]
    size = max(1, MAX_BLOCK_BYTES // (n * d * 4))
    total = len(sites) * n_pos
    for start in range(0, total, size):
        groups = list(range(start, min(start + size, total)))
        # no local name for the block: once the caller drops it, it is freed before the next
        # one is stacked (a local here would keep two blocks alive)
        yield groups, torch.stack([acts.acts[sites[g // n_pos]][:, g % n_pos]
                                   for g in groups]).to(device)


def _run(x, y, train, test, *, kind, task, n_out, l2, max_iter, seed):
    """Centre with training statistics, fit the probe of the standardised inputs, score;
    y is [G, n]."""
    xtr = x[:, train]  # [G, n_train, d], a copy (index), centred in place below
    mu = xtr.mean(1, keepdim=True)  # [G, 1, d]
    xtr.sub_(mu)
    sd = (xtr.pow(2).sum(1) / max(xtr.shape[1] - 1, 1)).sqrt()  # [G, d]
    sd = torch.where(sd > 1e-6, sd, torch.ones_like(sd))  # constant features stay as they are
    ytr, yte = y[:, train], y[:, test]
    if task == "regress":  # standardise the target too so l2 means the same at any scale
        ym, ys = ytr.mean(1, keepdim=True), ytr.std(1, keepdim=True).clamp_min(1e-12)
        ytr, yte = (ytr - ym) / ys, (yte - ym) / ys
    predict, linear = fit_batched(xtr, ytr, kind=kind, task=task, n_out=n_out, l2=l2,
                                  max_iter=max_iter, seed=seed, scale=sd)
    with torch.no_grad():
        s_train = _score(predict(xtr), ytr, task)
        s_test = _score(predict(x[:, test] - mu), yte, task)
    raw = None
    if linear is not None:  # back to activation space: logits = x W + (b - mu W)
        w, b = linear
        raw = (w, b - (mu @ w)[:, 0])
    return s_train, s_test, raw


def fit_probes(acts: "Activations | str", target, *, kind: str = "logistic",
               task: str = "auto", split_by: str | None = None, test_fraction: float = 0.3,
               control: bool = False, control_by: str | None = None, seed: int = 0,
               l2: float | None = None, max_iter: int = 200,
               sites: Sequence[str] | None = None,
               device: str | torch.device | None = None,
               allow_untested_classes: bool = False) -> ProbeResult:
    """Probes for every site and position of ``acts`` predicting ``target`` (a column name, a
    labels file or a label sequence). ``split_by`` names a group column (entity-level split);
    ``control`` adds the control task (types: ``control_by``'s values, by default the
    ``split_by`` groups, else the token at each position) and selectivity. ``l2`` defaults to ``1 / n_train`` (scikit-learn's C = 1)."""
    if isinstance(acts, str) or not isinstance(acts, Activations):
        acts = load_activations(acts, sites=list(sites) if sites else None)
    probe_kind = ProbeKind.parse(kind)
    if l2 is not None and not l2 >= 0:
        raise UserError(f"--l2 must be >= 0, got {l2!r}")
    tgt: Target = load_target(acts, target, task=task)
    groups = acts.column(split_by) if split_by else None
    train, test = split(tgt, groups=groups, test_fraction=test_fraction, seed=seed,
                        allow_untested=allow_untested_classes)
    site_names = list(sites) if sites else acts.sites
    n_pos = len(acts.positions)
    n_out = len(tgt.classes) if tgt.task == "classify" else 1
    l2 = 1.0 / len(train) if l2 is None else l2
    opts = dict(kind=probe_kind, task=tgt.task, n_out=n_out, l2=l2, max_iter=max_iter,
                seed=seed)
    y_control = None
    control_by = control_by or split_by  # entity-level probing: a random label per entity
    if control:
        if control_by:
            ids: dict[str, int] = {}
            types = torch.tensor([ids.setdefault(str(v), len(ids))
                                  for v in acts.column(control_by)])[:, None].expand(-1, n_pos)
        else:
            types = acts.tokens  # [n, P]
        y_control = control_labels(tgt, types, seed=seed)  # [P, n]
    train_parts, test_parts, control_parts, maps = [], [], [], []  # per block
    for groups, x in _blocks(acts, site_names, device):
        y = tgt.y.to(x.device).expand(len(groups), -1)
        s_train, s_test, raw = _run(x, y, train, test, **opts)
        train_parts.append(s_train.cpu())
        test_parts.append(s_test.cpu())
        if raw is not None:
            maps.append((raw[0].cpu(), raw[1].cpu()))
        if y_control is not None:
            y_c = y_control[[g % n_pos for g in groups]].to(x.device)  # [B, n]
            control_parts.append(_run(x, y_c, train, test, **opts)[1].cpu())
        del x  # freed before the next block is stacked
    s_train, s_test = torch.cat(train_parts), torch.cat(test_parts)

    def grid(v: torch.Tensor) -> list[list[float]]:
        return [[round(float(a), 6) for a in row] for row in v.reshape(len(site_names), n_pos)]
    control_score = selectivity = None
    if y_control is not None:
        c_test = torch.cat(control_parts)
        control_score, selectivity = grid(c_test), grid(s_test - c_test)
    chance = 0.0
    if tgt.task == "classify":
        majority = torch.bincount(tgt.y[train], minlength=n_out).argmax()
        chance = float((tgt.y[test] == majority).float().mean())
    test_grid = grid(s_test)
    embedding = (test_grid[site_names.index("resid.0")] if "resid.0" in site_names else None)
    weights = biases = None
    if maps:  # a linear probe: its maps in activation space
        w, b = torch.cat([m[0] for m in maps]), torch.cat([m[1] for m in maps])
        weights = w.reshape(len(site_names), n_pos, *w.shape[1:])
        biases = b.reshape(len(site_names), n_pos, -1)
    return ProbeResult(
        target=tgt.name, task=tgt.task, metric="accuracy" if tgt.task == "classify" else "r2",
        kind=kind, sites=tuple(site_names), positions=tuple(acts.positions),
        n_train=len(train), n_test=len(test), n_classes=n_out if tgt.task == "classify"
        else None, classes=tgt.classes,
        untested_classes=(len(tgt.classes) - len(set(tgt.y[test].tolist()))
                          if tgt.task == "classify" else 0), chance=round(chance, 6), train_score=grid(s_train), test_score=test_grid,
        control_score=control_score, selectivity=selectivity, embedding_baseline=embedding,
        split_by=split_by, test_fraction=test_fraction, seed=seed, model=acts.model,
        weights=weights, biases=biases, test_index=test)
