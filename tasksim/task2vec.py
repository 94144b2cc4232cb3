"""Task2Vec task embeddings (Achille et al., ICCV 2019) and the distances built on them.

A task is embedded through a fixed *probe network*: a feature extractor whose weights never
change (any ``nn.Module``, e.g. a Taskonomy encoder of :mod:`tasksim.zoo`), followed by a head
fitted on the task's own labelled images (:func:`fit_head`). The embedding is the diagonal of the
Fisher information of the probe's weights under the task's loss (:func:`diagonal_fisher`),
averaged over the weights of each filter (:func:`embedding`). Weights that matter for solving the
task carry a large Fisher value, so two tasks that rely on the same filters get similar
embeddings.

* Fisher: ``F = E_x E_{y ~ p_w(y|x)} [grad_w log p_w(y|x)^2]`` (elementwise square), the labels
  ``y`` drawn from the model's own predictive distribution (Monte Carlo; the paper's estimator)
  or, with ``closed_form=True``, the exact expectation over ``y``. For class targets the
  likelihood is categorical (softmax of the logits); for regression targets it is Gaussian with
  noise variance ``sigma^2``, whose Fisher is ``J^T J / sigma^2`` (``J`` the Jacobian of the
  outputs with respect to the weights).
* Symmetric distance (:func:`task_distance`): the cosine distance between ``a / (a + b)`` and
  ``b / (a + b)`` (elementwise), which is unaffected by rescaling any coordinate of both
  embeddings by the same factor, so filters with large Fisher values do not dominate.
* Asymmetric distance (:func:`asymmetric_distance`), for choosing which expert to transfer from:
  ``d_asym(ta -> tb) = d_sym(ta, tb) - alpha * d_sym(ta, t0)``, ``t0`` the trivial embedding
  (see that function for what ``t0`` is here), ``alpha = 0.15`` as in the paper.

Per-sample gradients are computed in chunks of ``batch_size`` with ``torch.func`` (``vmap`` over
``grad`` of a per-sample loss evaluated by ``functional_call``), never one sample at a time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, jacrev, vmap

KINDS = ("class", "regression")
POOLS = ("mean", "flatten")
DEFAULT_ALPHA = 0.15
EPS = 1e-12


# --------------------------------------------------------------------------- checks

def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _check_positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _check_inputs(inputs: Tensor, what: str = "inputs") -> Tensor:
    if not isinstance(inputs, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {tuple(inputs.shape)}): need at least one sample")
    return inputs


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule of ``model`` in eval mode, restoring each one's own mode on exit.

    Modules are restored one by one, so a model whose parts were in mixed modes gets exactly its
    mixed modes back, also when the body raises.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


# --------------------------------------------------------------------------- probe network

def pool_features(z: Tensor, pool: str = "mean") -> Tensor:
    """``[N, ...]`` activations to ``[N, D]`` features.

    ``mean``: average over every axis after the channel axis (global average pooling of a conv
    map; 2-D input is returned as is); ``flatten``: all values of a sample in one vector.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    if z.ndim < 2:
        raise ValueError(f"activations must be [N, ...] with at least 2 dimensions, got {tuple(z.shape)}")
    if pool == "mean":
        return z.mean(dim=tuple(range(2, z.ndim))) if z.ndim > 2 else z
    return z.flatten(1)


class Probe(nn.Module):
    """Probe network: a fixed feature extractor, pooling, and a task head.

    Parameters of the extractor are named ``extractor.<name>`` and those of the head
    ``head.<name>``, which is how :func:`diagonal_fisher` selects them.
    """

    def __init__(self, extractor: nn.Module, head: nn.Module, pool: str = "mean") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.extractor = extractor
        self.head = head
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        return self.head(pool_features(self.extractor(x), self.pool))


@torch.no_grad()
def predict(model: nn.Module, inputs: Tensor, batch_size: int = 64) -> Tensor:
    """Outputs of ``model`` on ``inputs`` in chunks of ``batch_size``, every module in eval mode
    (the caller's modes are restored)."""
    _check_inputs(inputs)
    batch_size = _check_positive_int(batch_size, "batch_size")
    with eval_mode(model):
        return torch.cat([model(inputs[i:i + batch_size]) for i in range(0, inputs.shape[0], batch_size)])


def extract_features(extractor: nn.Module, inputs: Tensor, pool: str = "mean",
                     batch_size: int = 64) -> Tensor:
    """Pooled ``[N, D]`` features of the fixed extractor (eval mode, no gradients)."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    return pool_features(predict(extractor, inputs, batch_size), pool)


class _Standardize(nn.Module):
    """Fixed per-feature standardisation with the training set's mean and standard deviation."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def _targets_tensor(targets: Any, kind: str, n: int, device: torch.device,
                    dtype: torch.dtype) -> Tensor:
    t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets)
    if t.ndim == 0 or t.shape[0] != n:
        raise ValueError(f"targets have length {t.shape[0] if t.ndim else 'scalar'} "
                         f"but features have {n} samples")
    if kind == "class":
        if t.ndim != 1:
            raise ValueError(f"class targets must be one label per sample, got shape {tuple(t.shape)}")
        if t.is_floating_point():
            if not torch.equal(t, t.round()):
                raise ValueError("class targets must be integer labels, got non-integer values")
        t = t.long()
        if int(t.min()) < 0:
            raise ValueError(f"class labels must be >= 0, got {int(t.min())}")
        return t.to(device)
    t = t.to(device=device, dtype=dtype)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(f"regression targets must be [N] or [N, K], got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("regression targets contain non-finite values")
    return t


def fit_head(features: Tensor, targets: Any, kind: str, epochs: int = 300, lr: float = 0.01,
             seed: int = 0, weight_decay: float = 1e-4, hidden: int = 0) -> nn.Module:
    """Fit a head on fixed ``[N, D]`` probe features; the probe itself is never touched.

    The head standardises each feature with the training mean and standard deviation (fixed
    buffers), then applies a linear layer (``hidden > 0``: linear, ReLU, linear). It is trained
    full-batch with Adam for ``epochs`` steps on cross-entropy (``kind="class"``, integer labels
    ``0..C-1``, ``C`` = largest label + 1) or mean squared error (``kind="regression"``, targets
    ``[N]`` or ``[N, K]``); initialisation is seeded by ``seed`` without touching the global
    random state, so the result is deterministic given ``seed``.

    The returned head is in eval mode and outputs ``[N, C]`` logits or ``[N, K]`` predictions.
    A regression head carries a buffer ``noise_variance`` (``[K]``): the mean squared residual of
    each output on the training set, the Gaussian noise variance that :func:`diagonal_fisher`
    uses unless given another one.
    """
    kind = _check_kind(kind)
    if not isinstance(features, Tensor):
        features = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {tuple(features.shape)}")
    n, d = features.shape
    if n == 0 or d == 0:
        raise ValueError(f"features are empty (shape {tuple(features.shape)})")
    if not torch.isfinite(features).all():
        raise ValueError("features contain non-finite values")
    epochs = _check_positive_int(epochs, "epochs")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if isinstance(hidden, bool) or not isinstance(hidden, (int, np.integer)) or hidden < 0:
        raise ValueError(f"hidden must be a non-negative integer, got {hidden!r}")
    x = features.detach()
    y = _targets_tensor(targets, kind, n, x.device, x.dtype)
    if kind == "class":
        n_out = int(y.max()) + 1
        if n_out < 2:
            raise ValueError(f"class targets need at least two classes, got only label {int(y.max())}")
    else:
        n_out = y.shape[1]

    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [_Standardize(mean, std)]
        if hidden:
            layers += [nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, n_out)]
        else:
            layers.append(nn.Linear(d, n_out))
        head = nn.Sequential(*layers).to(device=x.device, dtype=x.dtype)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    head.train()
    for _ in range(epochs):
        opt.zero_grad()
        out = head(x)
        loss = F.cross_entropy(out, y) if kind == "class" else F.mse_loss(out, y)
        loss.backward()
        opt.step()
    head.eval()
    if kind == "regression":
        with torch.no_grad():
            resid = ((head(x) - y) ** 2).mean(0)
        head.register_buffer("noise_variance", resid.clamp_min(EPS))
    head.kind = kind  # type: ignore[attr-defined]
    return head


# --------------------------------------------------------------------------- Fisher

def _select_params(model: nn.Module, params: Sequence[str] | None) -> list[str]:
    names = [name for name, _ in model.named_parameters()]
    if not names:
        raise ValueError(f"model {type(model).__name__} has no parameters")
    if params is None:
        return names
    if isinstance(params, str):
        params = [params]
    chosen: set[str] = set()
    for entry in params:
        hits = [n for n in names if n == entry or n.startswith(entry + ".")]
        if not hits:
            raise ValueError(f"parameter {entry!r} matches no parameter name or module prefix of "
                             f"the model (e.g. {names[:4]})")
        chosen.update(hits)
    return [n for n in names if n in chosen]


def _noise_variance(model: nn.Module, noise_variance: float | Sequence[float] | Tensor | None,
                    n_out: int, like: Tensor) -> Tensor:
    if noise_variance is None:
        found = [b for name, b in model.named_buffers()
                 if name == "noise_variance" or name.endswith(".noise_variance")]
        if not found:
            raise ValueError("regression Fisher needs noise_variance: pass it, or use a head from "
                             "fit_head, which estimates it from its residuals")
        noise_variance = found[-1]
    s2 = torch.as_tensor(noise_variance, dtype=like.dtype, device=like.device).reshape(-1)
    if s2.numel() == 1:
        s2 = s2.expand(n_out)
    if s2.numel() != n_out:
        raise ValueError(f"noise_variance has {s2.numel()} values but the model has {n_out} outputs")
    if not (torch.isfinite(s2).all() and (s2 > 0).all()):
        raise ValueError(f"noise_variance must be positive and finite, got {s2.tolist()}")
    return s2


def sample_targets(outputs: Tensor, kind: str, n_samples: int = 1, seed: int = 0,
                   noise_variance: float | Sequence[float] | Tensor | None = None) -> Tensor:
    """Labels drawn from the model's own predictive distribution given its ``[N, C|K]`` outputs.

    ``class``: ``[n_samples, N]`` labels ``y ~ softmax(logits)``; ``regression``:
    ``[n_samples, N, K]`` values ``y = output + sqrt(noise_variance) * eps``, ``eps`` standard
    normal. A ``torch.Generator`` seeded with ``seed`` makes the draw reproducible; this is the
    draw :func:`diagonal_fisher` uses, so its estimate can be rebuilt sample by sample.
    """
    kind = _check_kind(kind)
    n_samples = _check_positive_int(n_samples, "n_samples")
    _check_inputs(outputs, "outputs")
    if outputs.ndim != 2:
        raise ValueError(f"outputs must be [N, C], got shape {tuple(outputs.shape)}")
    gen = torch.Generator(device=outputs.device).manual_seed(int(seed))
    out = outputs.detach()
    if kind == "class":
        probs = torch.softmax(out, dim=1)
        return torch.multinomial(probs, n_samples, replacement=True, generator=gen).T.contiguous()
    if noise_variance is None:
        raise ValueError("regression sampling needs noise_variance")
    s2 = torch.as_tensor(noise_variance, dtype=out.dtype, device=out.device).reshape(-1)
    eps = torch.randn((n_samples, *out.shape), generator=gen, dtype=out.dtype, device=out.device)
    return out + s2.sqrt() * eps


def diagonal_fisher(model: nn.Module, inputs: Tensor, kind: str, n_samples: int = 1,
                    params: Sequence[str] | None = None, batch_size: int = 64, seed: int = 0,
                    noise_variance: float | Sequence[float] | Tensor | None = None,
                    closed_form: bool = False) -> dict[str, Tensor]:
    """Diagonal Fisher information of ``model``'s weights on ``inputs``, one tensor per parameter.

    ``model`` maps a batch of inputs to ``[B, C]`` logits (``kind="class"``) or ``[B, K]``
    predictions (``kind="regression"``), e.g. a :class:`Probe`. ``params`` restricts the
    computation to parameters named exactly or lying under a module prefix (``"extractor"``,
    ``"extractor.layer4"``); by default all parameters. The Task2Vec embedding uses the feature
    extractor's weights.

    Monte Carlo estimator (default): the outputs are computed once, ``n_samples`` labels per input
    are drawn from the model's own predictive distribution with :func:`sample_targets` (seeded by
    ``seed``), and the result is the mean over inputs and draws of the squared per-sample gradient
    of ``-log p(y | x)``. For regression the likelihood is Gaussian with variance
    ``noise_variance`` per output (by default the head's ``noise_variance`` buffer, see
    :func:`fit_head`). ``closed_form=True`` takes the exact expectation over ``y`` instead:
    ``sum_k J_k^2 / sigma_k^2`` for regression, ``sum_c p_c (d log p_c)^2`` for classes, from
    per-sample Jacobians (memory grows with the number of outputs).

    Per-sample gradients are batched with ``torch.func.vmap`` in chunks of ``batch_size``.
    Every module (batch norm, dropout) is in eval mode during the computation, so batch norm uses
    its running statistics, leaves them unchanged, and each sample's gradient does not depend on
    the rest of its chunk. (The paper authors' released code leaves the network in train mode
    although its comment says eval; that is not reproduced here.) The caller's modes are restored
    afterwards. Sums are accumulated in float64; the result has each parameter's dtype.
    """
    kind = _check_kind(kind)
    _check_inputs(inputs)
    n_samples = _check_positive_int(n_samples, "n_samples")
    batch_size = _check_positive_int(batch_size, "batch_size")
    names = _select_params(model, params)
    n = inputs.shape[0]

    with eval_mode(model):
        all_params = dict(model.named_parameters())
        fixed: dict[str, Tensor] = {k: v.detach() for k, v in all_params.items() if k not in names}
        fixed.update({k: v.detach() for k, v in model.named_buffers()})
        wrt = {k: all_params[k].detach() for k in names}

        def out_one(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(model, {**fixed, **p}, (x.unsqueeze(0),)).squeeze(0)

        outputs = predict(model, inputs, batch_size)
        if outputs.ndim != 2 or outputs.shape[0] != n:
            raise ValueError(f"model outputs must be [N, C] for N={n} inputs, got {tuple(outputs.shape)}")
        n_out = outputs.shape[1]
        if kind == "class" and n_out < 2:
            raise ValueError(f"class Fisher needs at least 2 logits, the model outputs {n_out}")
        s2 = _noise_variance(model, noise_variance, n_out, outputs) if kind == "regression" else None

        acc = {k: torch.zeros(v.shape, dtype=torch.float64, device=v.device) for k, v in wrt.items()}
        if closed_form:
            jac_fn = vmap(jacrev(out_one), in_dims=(None, 0))
            for i in range(0, n, batch_size):
                xb = inputs[i:i + batch_size]
                jac = jac_fn(wrt, xb)  # name -> [B, C, *shape]
                if kind == "regression":
                    for k, j in jac.items():
                        w = (1.0 / s2).to(torch.float64).reshape(1, -1, *([1] * (j.ndim - 2)))
                        acc[k] += (j.to(torch.float64) ** 2 * w).sum(dim=(0, 1))
                else:
                    p = torch.softmax(outputs[i:i + batch_size].to(torch.float64), dim=1)
                    for k, j in jac.items():
                        j = j.to(torch.float64)
                        pw = p.reshape(*p.shape, *([1] * (j.ndim - 2)))
                        jl = j - (pw * j).sum(dim=1, keepdim=True)  # Jacobian of log-softmax
                        acc[k] += (pw * jl ** 2).sum(dim=(0, 1))
            count = n
        else:
            targets = sample_targets(outputs, kind, n_samples, seed, s2)

            if kind == "class":
                def loss_one(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
                    return -torch.log_softmax(out_one(p, x), dim=0).gather(0, y.reshape(1)).squeeze(0)
            else:
                def loss_one(p: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
                    return ((y - out_one(p, x)) ** 2 / (2.0 * s2)).sum()

            grad_fn = vmap(grad(loss_one), in_dims=(None, 0, 0))
            for s in range(n_samples):
                for i in range(0, n, batch_size):
                    g = grad_fn(wrt, inputs[i:i + batch_size], targets[s, i:i + batch_size])
                    for k, v in g.items():
                        acc[k] += (v.to(torch.float64) ** 2).sum(0)
            count = n * n_samples
    return {k: (acc[k] / count).to(wrt[k].dtype) for k in names}


# --------------------------------------------------------------------------- embedding

def embedding(fisher: Mapping[str, Tensor | np.ndarray], model: nn.Module) -> np.ndarray:
    """Task2Vec embedding: the diagonal Fisher averaged per filter, as one float64 vector.

    A weight ``[out, in, kh, kw]`` (conv) or ``[out, in]`` (linear) contributes one value per
    output channel, the mean over all its other axes; 1-D parameters (biases, norm scales) are kept
    as they are. Parameters are concatenated in ``model.named_parameters()`` order, whatever the
    order of ``fisher``, so embeddings of different tasks line up entry by entry.
    """
    if not fisher:
        raise ValueError("fisher is empty: no parameters to embed")
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    unknown = [k for k in fisher if k not in shapes]
    if unknown:
        raise ValueError(f"fisher has entries that are not parameters of the model: {unknown[:5]}")
    parts = []
    for name, shape in shapes.items():
        if name not in fisher:
            continue
        value = fisher[name]
        arr = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
        arr = arr.astype(np.float64)
        if arr.shape != shape:
            raise ValueError(f"fisher[{name!r}] has shape {arr.shape}, the parameter has {shape}")
        if arr.ndim >= 2:
            parts.append(arr.reshape(arr.shape[0], -1).mean(axis=1))
        else:
            parts.append(arr.reshape(-1))
    return np.concatenate(parts)


def task_embedding(extractor: nn.Module, inputs: Tensor, targets: Any, kind: str, *,
                   params: Sequence[str] | None = None, pool: str = "mean", n_samples: int = 1,
                   seed: int = 0, batch_size: int = 64, epochs: int = 300, lr: float = 0.01,
                   weight_decay: float = 1e-4, hidden: int = 0,
                   noise_variance: float | Sequence[float] | None = None,
                   closed_form: bool = False) -> np.ndarray:
    """Embed one task: fit a head on the fixed extractor's pooled features
    (:func:`fit_head`), take the diagonal Fisher of the extractor's weights
    (:func:`diagonal_fisher`; ``params`` are names or module prefixes inside the extractor, by
    default all of it) and average it per filter (:func:`embedding`). ``seed`` seeds both the head
    and the Monte Carlo draw."""
    feats = extract_features(extractor, inputs, pool, batch_size)
    head = fit_head(feats, targets, kind, epochs=epochs, lr=lr, seed=seed,
                    weight_decay=weight_decay, hidden=hidden)
    probe = Probe(extractor, head, pool)
    if isinstance(params, str):
        params = [params]
    names = ["extractor"] if params is None else [f"extractor.{p}" for p in params]
    fisher = diagonal_fisher(probe, inputs, kind, n_samples=n_samples, params=names,
                             batch_size=batch_size, seed=seed, noise_variance=noise_variance,
                             closed_form=closed_form)
    return embedding(fisher, probe)


# --------------------------------------------------------------------------- distances

def _as_vector(x: np.ndarray | Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D embedding, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains non-finite values")
    return a


def task_distance(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float],
                  eps: float = 1e-8) -> float:
    """Symmetric Task2Vec distance: cosine distance of ``a / (a + b + eps)`` and ``b / (a + b + eps)``.

    0 for identical embeddings, symmetric, and in ``[0, 1]`` for non-negative embeddings (Fisher
    values are). Dividing by ``a + b`` makes it unchanged when the same coordinate of both
    embeddings is multiplied by the same positive factor. Raises ``ValueError`` for shapes that
    differ, empty or non-finite input, or an embedding that is zero after the normalisation.
    """
    a = _as_vector(a, "a")
    b = _as_vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"embeddings have different lengths: a {a.size}, b {b.size}")
    if np.array_equal(a, b):
        return 0.0
    denom = a + b + eps
    an, bn = a / denom, b / denom
    na, nb = np.linalg.norm(an), np.linalg.norm(bn)
    if na == 0 or nb == 0:
        raise ValueError(f"embedding {'a' if na == 0 else 'b'} is zero: the cosine is undefined")
    cos = float(np.dot(an, bn) / (na * nb))
    return float(min(max(1.0 - cos, 0.0), 2.0))


def distance_matrix(embeddings: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Symmetric task x task matrix of :func:`task_distance`, rows and columns in mapping order."""
    if not embeddings:
        raise ValueError("embeddings is empty: need at least one task")
    names = list(embeddings)
    vecs = {k: _as_vector(v, f"embedding of {k!r}") for k, v in embeddings.items()}
    size = vecs[names[0]].size
    for k in names:
        if vecs[k].size != size:
            raise ValueError(f"embedding of {k!r} has length {vecs[k].size}, "
                             f"{names[0]!r} has {size}")
    m = np.zeros((len(names), len(names)))
    for i, ka in enumerate(names):
        for j in range(i + 1, len(names)):
            m[i, j] = m[j, i] = task_distance(vecs[ka], vecs[names[j]])
    return pd.DataFrame(m, index=names, columns=names)


def asymmetric_distance(task: np.ndarray, model_embedding: np.ndarray, trivial: np.ndarray,
                        alpha: float = DEFAULT_ALPHA) -> float:
    """Asymmetric Task2Vec distance from an expert's task to a new ``task``:

    ``d_asym(expert -> task) = d_sym(expert, task) - alpha * d_sym(expert, t0)``.

    ``model_embedding`` is the embedding of the task the expert was trained on, computed with
    the same probe as ``task``. ``trivial`` is ``t0``, the trivial embedding: the paper names it
    without pinning it down; here it is the probe's embedding on the task the probe already
    solves (for a Taskonomy encoder used as probe: its own training task), so that
    ``d_sym(expert, t0)`` measures how far the expert's task goes beyond what the probe already
    encodes. The second term favours experts trained on such harder tasks, from which transfer
    tends to work better; ``alpha = 0.15`` is the paper's value. Lower is better.
    """
    if not (isinstance(alpha, (int, float, np.floating)) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    return task_distance(model_embedding, task) - float(alpha) * task_distance(model_embedding, trivial)


def select_experts(task_embedding: np.ndarray, expert_embeddings: Mapping[str, np.ndarray],
                   trivial: np.ndarray, alpha: float = DEFAULT_ALPHA) -> pd.Series:
    """Experts ranked for a new task by :func:`asymmetric_distance` (ascending: best first)."""
    if not expert_embeddings:
        raise ValueError("expert_embeddings is empty: no expert to rank")
    scores = {name: asymmetric_distance(task_embedding, emb, trivial, alpha)
              for name, emb in expert_embeddings.items()}
    return pd.Series(scores, name="asymmetric_distance").sort_values(kind="stable")
