"""Attribution maps of an encoder and their per-image cosine similarity (docs/methods.md, "Attribution-map similarity").

What is attributed
    The SUM of all output units of ``model(images)`` (for a Taskonomy encoder the 8 x 16 x 16 code),
    with respect to the image **as fed to the network**, i.e. after the per-task preprocessing
    (``tasksim.probe.preprocess``: scaling to [-1, 1], and for the 14 low-saturation tasks the clip to
    [0.1, 0.9] before that scaling). The caller passes the already preprocessed batch.

Methods (DeepExplain semantics, Ancona et al., ``deepexplain/tensorflow/methods.py``)
    * ``saliency``   : ``|d sum(out) / d x|``
    * ``gradxinput`` : ``d sum(out) / d x * x``
    * ``elrp``       : epsilon-LRP implemented as DeepExplain does it: the gradient of every
      nonlinearity (ReLU, and ELU / sigmoid / tanh / softplus) is replaced by
      ``grad_out * output / (input + eps * where(input >= 0, 1, -1))`` (``input`` / ``output``
      = the nonlinearity's pre- / post-activation; note ``sign(0) = +1``); every other op
      (convolution, batch norm, max pooling, padding, residual addition) keeps its ordinary
      gradient; the attribution is the modified gradient times the input. For a network in which
      every affine layer is followed by a ReLU this equals the layer-wise LRP-epsilon rule
      ``R_i = sum_j x_i w_ij / (z_j + eps * sign(z_j)) R_j`` with ``z_j`` the pre-activation
      *including the bias* (for the Taskonomy encoder conv + batch norm is that affine layer).

Each map is averaged over the colour channels keeping its sign (for saliency the absolute value
is taken first), giving ``N x H x W``.

Cost: one forward pass and two input-only backward passes per batch (parameters stay frozen):
the graph recorded under :func:`epsilon_lrp_rules` serves both rules, the rule being chosen when
the backward pass runs (first the ordinary gradient, for saliency and gradient*input, then
epsilon-LRP). Fastest measured on CPU (``benchmarks/bench_attribution.py``): pass the model
through :func:`folded_for_attribution` once (batch norm folded into the convolutions; same maps up to
rounding, cosine >= 0.9994) and convert the folded copy and the images to channels_last; keep
float32: bfloat16 autocast gives maps that disagree with float32 (cosine ~0.1-0.8 per image).

Storage: :func:`to_float16` rescales every image's map by its largest absolute value before the
cast, so float16 neither underflows nor overflows whatever the model's gradient magnitude;
cosine similarity is scale-invariant, so the stored maps can be compared directly (the scale is
returned to recover the original values). ``tests/test_attribution.py`` checks that float16
storage agrees with float32 (cosine >= 0.999 per image).

Similarity: :func:`cosine_similarity_matrix` streams maps in image chunks (pass h5py datasets to
read from disk), so memory is ``M x chunk_size x H*W`` float64 rather than all maps at once.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from tasksim.extract.fold import folded_copy

METHODS: tuple[str, ...] = ("saliency", "gradxinput", "elrp")
"""Attribution methods, in the names used by files and configs (``attribution_<method>``)."""

DEFAULT_EPSILON: float = 1e-4
"""Epsilon of epsilon-LRP used by the attribution paper (DeepExplain's default)."""

_GRADIENT_METHODS = frozenset({"saliency", "gradxinput"})


# ----------------------------------------------------------------------------------------------
# epsilon-LRP as a gradient override of the nonlinearities
# ----------------------------------------------------------------------------------------------


@dataclass
class LRPRuleState:
    """Backward rule of the nonlinearities recorded under :func:`epsilon_lrp_rules`.

    ``rule`` is read when the backward pass runs, so one recorded graph can be differentiated
    with either rule: ``"elrp"`` (DeepExplain's epsilon-LRP override) or ``"gradient"``
    (the ordinary derivative).
    """

    epsilon: float
    rule: str = "elrp"


def _elrp_ratio(inp: Tensor, out: Tensor, epsilon: float) -> Tensor:
    """DeepExplain's ``output / (input + eps * where(input >= 0, 1, -1))``, in float32 or wider."""
    dtype = torch.promote_types(inp.dtype, torch.float32)
    i, o = inp.to(dtype), out.to(dtype)
    sign = torch.where(i >= 0, 1.0, -1.0).to(dtype)
    return o / (i + epsilon * sign)


class _ReLURule(torch.autograd.Function):
    """ReLU whose backward applies ``state.rule``; saves only its output (like native ReLU).

    For ReLU the DeepExplain ratio needs only the output: where input >= 0 the output equals
    the input (ratio ``out / (out + eps)``), where input < 0 the output is 0 (ratio 0).
    """

    @staticmethod
    def forward(ctx: Any, inp: Tensor, state: LRPRuleState, inplace: bool) -> Tensor:
        if inplace:
            out = inp.relu_()
            ctx.mark_dirty(inp)
        else:
            out = torch.relu(inp)
        ctx.save_for_backward(out)
        ctx.state = state
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (out,) = ctx.saved_tensors
        state: LRPRuleState = ctx.state
        if state.rule == "gradient":
            return torch.ops.aten.threshold_backward(grad, out, 0), None, None
        # out >= 0 everywhere, so DeepExplain's sign factor is +1: ratio = out / (out + eps)
        o = out if out.dtype in (torch.float32, torch.float64) else out.float()
        g = o + state.epsilon  # one buffer, updated in place: out / (out + eps) * grad
        torch.div(o, g, out=g)
        g.mul_(grad)
        return g.to(grad.dtype), None, None


class _ElementwiseRule(torch.autograd.Function):
    """Any elementwise nonlinearity ``fn`` whose backward applies ``state.rule``."""

    @staticmethod
    def forward(ctx: Any, inp: Tensor, state: LRPRuleState, fn: Callable[[Tensor], Tensor]) -> Tensor:
        out = fn(inp)
        ctx.save_for_backward(inp, out)
        ctx.state = state
        ctx.fn = fn
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        inp, out = ctx.saved_tensors
        state: LRPRuleState = ctx.state
        if state.rule == "gradient":
            # ordinary derivative; torch functions disabled so a backward run inside the
            # context does not record (and recurse into) a new rule node
            with torch.enable_grad(), torch._C.DisableTorchFunction():
                x = inp.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(ctx.fn(x), x, grad)
            return g, None, None
        ratio = _elrp_ratio(inp, out, state.epsilon)
        return (grad.to(ratio.dtype) * ratio).to(grad.dtype), None, None


def _input_and_rest(args: tuple, kwargs: dict) -> tuple[Tensor, tuple, dict]:
    """Split a functional call into its input tensor and the remaining arguments."""
    if args:
        return args[0], args[1:], kwargs
    kwargs = dict(kwargs)
    return kwargs.pop("input"), (), kwargs


_RELU_FUNCS: dict[Any, bool] = {  # function -> in-place
    F.relu: False,  # in-place decided by its ``inplace`` argument
    torch.relu: False,
    Tensor.relu: False,
    torch.relu_: True,
    Tensor.relu_: True,
}
_ELEMENTWISE_FUNCS = frozenset({F.elu, torch.sigmoid, Tensor.sigmoid, F.sigmoid, torch.tanh,
                                Tensor.tanh, F.tanh, F.softplus})
_INPLACE_UNSUPPORTED = frozenset({F.elu_, torch.sigmoid_, Tensor.sigmoid_, torch.tanh_, Tensor.tanh_})
_UNSUPPORTED_MODULES = (nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardtanh, nn.PReLU, nn.Mish,
                        nn.SELU, nn.CELU, nn.Softsign)


class _EpsilonLRPMode(TorchFunctionMode):
    """Routes every supported nonlinearity call (module or functional) through a rule node."""

    def __init__(self, state: LRPRuleState) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in _RELU_FUNCS or func in _ELEMENTWISE_FUNCS or func in _INPLACE_UNSUPPORTED:
            inp, rest, rest_kwargs = _input_and_rest(args, kwargs)
            if isinstance(inp, Tensor) and torch.is_grad_enabled() and inp.requires_grad:
                if func in _INPLACE_UNSUPPORTED:
                    raise NotImplementedError(
                        f"in-place {func.__name__} is not supported under epsilon-LRP; "
                        "use the out-of-place form")
                if func in _RELU_FUNCS:
                    inplace = _RELU_FUNCS[func]
                    if func is F.relu:
                        inplace = bool(rest[0]) if rest else bool(rest_kwargs.get("inplace", False))
                    return _ReLURule.apply(inp, self.state, inplace)
                if rest_kwargs.get("inplace", False) or (func is F.elu and len(rest) > 1 and rest[1]):
                    raise NotImplementedError(
                        f"in-place {func.__name__} is not supported under epsilon-LRP; "
                        "use inplace=False")
                rest_kwargs.pop("inplace", None)
                return _ElementwiseRule.apply(
                    inp, self.state, lambda t: func(t, *rest, **rest_kwargs))
        return func(*args, **kwargs)


@contextlib.contextmanager
def epsilon_lrp_rules(epsilon: float = DEFAULT_EPSILON,
                      model: nn.Module | None = None) -> Iterator[LRPRuleState]:
    """Record nonlinearities with DeepExplain's epsilon-LRP gradient override.

    Inside the context every ReLU (``nn.ReLU`` modules, in-place or not, ``F.relu``,
    ``torch.relu``, ``Tensor.relu``/``relu_``) and every ELU / sigmoid / tanh / softplus applied
    to a tensor that requires grad is recorded as a node whose backward applies the rule of the
    yielded :class:`LRPRuleState` (``"elrp"`` unless changed, also after the context has exited).
    The override is done at the ``torch.function`` level (a ``TorchFunctionMode``, thread-local),
    so nn modules and functional calls are both covered and **the model is never modified**;
    nothing is left behind when the context exits. Ops other than these nonlinearities keep
    their ordinary gradients, as in DeepExplain.

    ``model`` is optional and only used to warn about activation modules DeepExplain does not
    support either (ReLU6, LeakyReLU, GELU, ...), whose ordinary gradient is used.
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon-LRP needs epsilon > 0, got {epsilon}")
    if model is not None:
        bad = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _UNSUPPORTED_MODULES)})
        if bad:
            warnings.warn(f"epsilon-LRP: activation(s) {bad} not supported; their ordinary gradient "
                          "is used (as DeepExplain does)", RuntimeWarning, stacklevel=3)
    state = LRPRuleState(epsilon=float(epsilon))
    with _EpsilonLRPMode(state):
        yield state


# ----------------------------------------------------------------------------------------------
# attribution maps
# ----------------------------------------------------------------------------------------------


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a model without either)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def folded_for_attribution(model: nn.Module) -> nn.Module:
    """Copy of an eval-mode model with every Conv -> BatchNorm pair folded into the convolution.

    The pairs come from the traced data flow (:mod:`tasksim.extract.fold`; a model torch.fx cannot
    trace is copied unfolded); the original model is not modified. In eval mode batch norm is
    a per-channel affine map, so the folded network computes the same function (up to float
    rounding) with the same pre-activations at every nonlinearity, hence the same saliency,
    gradient*input and epsilon-LRP maps, while skipping the batch-norm forward and backward
    passes. Parameters of the copy do not require grad.
    """
    if model.training:
        raise ValueError("folded_for_attribution needs the model in eval mode (call model.eval())")
    folded = folded_copy(model)
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded


def raw_attributions(model: nn.Module, images: Tensor, methods: Sequence[str] = METHODS,
                     epsilon: float = DEFAULT_EPSILON, *,
                     autocast_dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Per-channel attributions (same shape as ``images``) of ``sum(model(images))``.

    ``images`` is the preprocessed network input (any shape the model accepts, batch first);
    it is moved to the model's device and used in float32 (``images.dtype`` float64 is kept,
    for exact tests). ``autocast_dtype`` (e.g. ``torch.bfloat16``) runs the forward pass under
    autocast; ``None`` (the default) is full precision. Parameters need not require grad; the
    model must be in eval mode (batch norm with running statistics). Returns float tensors on
    the model's device, detached, keyed by method.
    """
    methods = _check_methods(methods)
    if model.training:
        raise ValueError("attribution needs the model in eval mode (call model.eval())")
    device = model_device(model)
    dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    x = images.detach().to(device=device, dtype=dtype).requires_grad_(True)
    want_grad = bool(_GRADIENT_METHODS.intersection(methods))
    want_elrp = "elrp" in methods
    autocast = torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16,
                              enabled=autocast_dtype is not None)
    with torch.enable_grad():
        if want_elrp:
            with epsilon_lrp_rules(epsilon, model) as state, autocast:
                total = model(x).to(dtype).sum()
        else:
            state = None
            with autocast:
                total = model(x).to(dtype).sum()
        out: dict[str, Tensor] = {}
        if want_grad:
            if state is not None:
                state.rule = "gradient"
            (grad,) = torch.autograd.grad(total, x, retain_graph=want_elrp)
            if "saliency" in methods:
                out["saliency"] = grad.abs()
            if "gradxinput" in methods:
                out["gradxinput"] = grad * x.detach()
            del grad
        if want_elrp:
            assert state is not None
            state.rule = "elrp"
            (grad,) = torch.autograd.grad(total, x)
            out["elrp"] = grad * x.detach()
    return {m: out[m].detach() for m in methods}


def attribution_maps(model: nn.Module, images: Tensor, methods: Sequence[str] = METHODS,
                     epsilon: float = DEFAULT_EPSILON, *,
                     autocast_dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Attribution maps ``N x H x W`` of ``sum(model(images))`` w.r.t. ``images`` (``N x C x H x W``).

    ``images`` is the preprocessed network input (for Taskonomy: ``N x 3 x 256 x 256`` in
    [-1, 1], low-saturation clip already applied where the task needs it). Methods:
    ``"saliency"`` (|gradient|), ``"gradxinput"`` (gradient * input), ``"elrp"`` (DeepExplain
    epsilon-LRP with ``epsilon``). Each map is the mean over the channel axis keeping the sign
    (saliency: mean of absolute values). Returns float32 (float64 for float64 input) tensors on
    the model's device, keyed by method in the order given. See :func:`raw_attributions`.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    raw = raw_attributions(model, images, methods, epsilon, autocast_dtype=autocast_dtype)
    return {m: r.mean(dim=1) for m, r in raw.items()}


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """Validate and de-duplicate method names, keeping their order."""
    if isinstance(methods, str):
        methods = (methods,)
    out = tuple(dict.fromkeys(methods))
    unknown = [m for m in out if m not in METHODS]
    if unknown or not out:
        raise ValueError(f"unknown attribution method(s) {unknown}; valid: {', '.join(METHODS)}")
    return out


# ----------------------------------------------------------------------------------------------
# storage
# ----------------------------------------------------------------------------------------------


def to_float16(maps: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Storage form of maps ``N x ...``: (float16 maps scaled to max |value| 1 per image, scale).

    ``scale`` is float32 ``[N]`` (1 for an all-zero map); ``stored * scale[:, None, None]``
    recovers the maps to float16 precision. Cosine similarities can use the stored maps as they
    are (cosine is scale-invariant).
    """
    a = maps.detach().cpu().numpy() if isinstance(maps, Tensor) else np.asarray(maps)
    a = a.astype(np.float32, copy=False)
    flat = a.reshape(len(a), -1)
    scale = np.abs(flat).max(axis=1) if flat.shape[1] else np.ones(len(a), np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    stored = (a / scale.reshape((-1,) + (1,) * (a.ndim - 1))).astype(np.float16)
    return stored, scale


# ----------------------------------------------------------------------------------------------
# per-image cosine similarity
# ----------------------------------------------------------------------------------------------


class SliceableMaps(Protocol):
    """Maps of one model, ``N x H x W``: a numpy array, a CPU tensor or an h5py dataset."""

    shape: tuple[int, ...]

    def __getitem__(self, key: slice) -> Any: ...


def _normalised_rows(maps: Any) -> np.ndarray:
    """Maps ``n x ...`` as float64 ``n x P`` rows of unit L2 norm (zero maps become NaN rows)."""
    a = maps.detach().cpu().numpy() if isinstance(maps, Tensor) else np.asarray(maps)
    rows = a.reshape(len(a), -1).astype(np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return rows / np.where(norms > 0, norms, np.nan)


def per_image_cosine(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> np.ndarray:
    """Cosine similarity of ``a[i]`` and ``b[i]`` for every image i: float64 ``[N]``.

    ``a`` and ``b`` are ``N x H x W`` (any trailing shape; flattened per image). An all-zero
    map has no direction: its cosines are NaN.
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    return np.einsum("np,np->n", _normalised_rows(a), _normalised_rows(b))


def cosine_similarity_matrix(maps: Sequence[SliceableMaps], chunk_size: int = 16
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Similarity of M models = mean over images of the per-image cosine of their maps.

    ``maps[m]`` holds model m's maps ``N x H x W`` (same N and image order for all models):
    numpy arrays, CPU tensors or h5py datasets; they are read in chunks of ``chunk_size`` images
    (``maps[m][i0:i1]``), so only ``M x chunk_size x H*W`` float64 values are in memory
    (M = 20, 65536 px, chunk 16: 168 MB). Each chunk's maps are normalised once, then one
    batched product gives all M x M cosines of each image.

    Returns ``(matrix [M, M], per_image [M, M, N])``, float64, both exactly symmetric; the
    diagonal is 1 up to rounding (NaN for a model with an all-zero map on some image).
    """
    if len(maps) == 0:
        raise ValueError("no maps")
    n = int(maps[0].shape[0])
    shape = tuple(maps[0].shape)
    for m, mp in enumerate(maps):
        if tuple(mp.shape) != shape:
            raise ValueError(f"maps[{m}] has shape {tuple(mp.shape)}, expected {shape}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    n_models = len(maps)
    per_image = np.empty((n_models, n_models, n), dtype=np.float64)
    for i0 in range(0, n, chunk_size):
        i1 = min(n, i0 + chunk_size)
        block = np.stack([_normalised_rows(mp[i0:i1]) for mp in maps], axis=1)  # chunk x M x P
        gram = block @ block.transpose(0, 2, 1)  # chunk x M x M
        gram = 0.5 * (gram + gram.transpose(0, 2, 1))
        per_image[:, :, i0:i1] = gram.transpose(1, 2, 0)
    return per_image.mean(axis=2), per_image


# --------------------------------------------------------------------------------------------
# registration: one similarity method per attribution kind (tasksim.similarity.registry)


def attribution_similarity(maps: Sequence[SliceableMaps], chunk_size: int = 16,
                           names: Sequence[str] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Registry form of :func:`cosine_similarity_matrix`: ``(matrix, info)``.

    ``maps`` holds one map source per model (array or h5py dataset ``N x H x W`` of one
    attribution kind); ``info["per_image"]`` is the ``[M, M, N]`` array of per-image cosines
    (not JSON: stored separately, for the bootstrap over images)."""
    matrix, per_image = cosine_similarity_matrix(maps, chunk_size)
    labels = list(names) if names is not None else [f"model[{i}]" for i in range(len(maps))]
    if len(labels) != len(maps):
        raise ValueError(f"{len(labels)} names for {len(maps)} models")
    return matrix, {"n_models": len(maps), "n_images": int(per_image.shape[2]),
                    "map_shape": list(maps[0].shape[1:]), "names": labels,
                    "per_image": per_image}


def method_name(kind: str) -> str:
    """Similarity method of one attribution kind (``saliency`` -> ``attribution_saliency``)."""
    return f"attribution_{kind}"


def map_kind(method: str) -> str:
    """Attribution kind of a similarity method (``attribution_elrp`` -> ``elrp``)."""
    kind = method.removeprefix("attribution_")
    if method == kind or kind not in METHODS:
        raise ValueError(f"{method!r} is not an attribution method; they are "
                         f"{[method_name(k) for k in METHODS]}")
    return kind


def _register_methods() -> None:
    from tasksim.similarity.registry import register

    titles = {"saliency": "saliency |d sum(code) / d input|",
              "gradxinput": "gradient x input", "elrp": f"epsilon-LRP (epsilon {DEFAULT_EPSILON:g})"}
    for kind in METHODS:
        register(method_name(kind), reads="attribution_maps", section="attribution",
                 bootstrap="per_image", layers=("input",),
                 description=f"Mean per-image cosine of {titles[kind]} attribution maps")(attribution_similarity)


_register_methods()
