"""The model zoo: model specifications, weights resolution, building, loading and layer recording.

A *model* is a config entry: a name, an architecture (an importable builder function), a weights
source and the layers to record. The Taskonomy family is built in: one model per task, the
``visualpriors`` ``TaskonomyEncoder`` (the official PyTorch port, used as a dependency rather than
re-written), weights from the official file list of visualpriors (file names carry the SHA-256).
Any other PyTorch model is added by configuration only (``models:`` in the config).

Stand-in weights (:func:`write_standin_zoo`) are seeded random checkpoints in exactly the official
format, ``{'state_dict': ...}`` in ``<task>_encoder-<sha256>.pth``, plus a ``SHA256SUMS`` manifest,
so offline runs and tests go through the real download / verify / load path.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tasksim.io import atomic_path
from tasksim.tasks import LOW_SATURATION_TASKS, TASKS, canonical

log = logging.getLogger(__name__)

#: Recorded layer name -> module of ``visualpriors`` ``TaskonomyEncoder``.
TASKONOMY_LAYERS: dict[str, str] = {
    "block1": "layer1",
    "block2": "layer2",
    "block3": "layer3",
    "block4": "layer4",
    "encoder_output": "relu1",  # compress1 -> compress_bn -> ReLU: the 8 x 16 x 16 code
}
TASKONOMY_BUILDER = "tasksim.zoo:taskonomy_encoder"
#: Modules kept in float32 under bf16 autocast: the 2048 -> 8 code head (0.25 % of the FLOPs)
#: whose 8-channel output is the most precision-sensitive recorded layer.
TASKONOMY_FP32_MODULES: tuple[str, ...] = ("compress1",)
_WEIGHT_NAME = re.compile(r"^(?P<task>[a-z0-9_]+)_encoder-(?P<sha>[0-9a-f]{64})\.pth$")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to fetch, build and record one model."""

    name: str
    builder: str
    weights: str  # URL, file:// URL, or local path (resolved, not a mirror directory)
    sha256: str | None
    layers: dict[str, str]  # recorded layer name -> module name ("" = the model output)
    low_saturation: bool = False
    resolution: int | None = None
    builder_kwargs: dict[str, Any] = field(default_factory=dict)
    origin: str = "config key tasks"  # where the model comes from, for error messages

# --------------------------------------------------------------------------- weights lists

def official_weight_files() -> dict[str, str]:
    """Canonical task -> official encoder file name, from visualpriors' published list."""
    from visualpriors.taskonomy_network import TASKONOMY_PRETRAINED_WEIGHT_FILES

    out: dict[str, str] = {}
    for fname in TASKONOMY_PRETRAINED_WEIGHT_FILES:
        m = _WEIGHT_NAME.match(fname)
        if m:
            out[canonical(m["task"])] = fname
    return out


def sha_from_filename(name: str) -> str | None:
    """The SHA-256 embedded in an official-format name ``<task>_encoder-<sha256>.pth``."""
    m = _WEIGHT_NAME.match(Path(name).name)
    if m:
        return m["sha"]
    m = re.search(r"-([0-9a-f]{64})\.\w+$", Path(name).name)
    return m.group(1) if m else None


def read_manifest(path: str | Path) -> dict[str, str]:
    """Read a weights manifest: task -> file name.

    Lines are either a file name ``<task>_encoder-<sha256>.pth`` or a ``sha256sum`` line
    ``<sha256>  <file name>``; blank lines and ``#`` comments are ignored. The file name's task
    may use any spelling; a hash in the line must agree with the hash in the name.
    """
    out: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        fname = parts[-1].lstrip("*")
        m = _WEIGHT_NAME.match(fname)
        if not m:
            raise ValueError(f"{path}:{lineno}: {fname!r} is not a '<task>_encoder-<sha256>.pth' name")
        if len(parts) == 2 and parts[0].lower() != m["sha"]:
            raise ValueError(f"{path}:{lineno}: hash {parts[0]} disagrees with the file name {fname}")
        out[canonical(m["task"])] = fname
    return out


# --------------------------------------------------------------------------- specs

def taskonomy_spec(task: str, weights_source: str, manifest: Mapping[str, str] | None,
                   layers: Sequence[str], low_saturation_tasks: Sequence[str] = LOW_SATURATION_TASKS,
                   normalize_outputs: bool = False) -> ModelSpec:
    """Specification of the Taskonomy encoder of ``task``."""
    from tasksim.download import resolve

    task = canonical(task)
    files = dict(manifest) if manifest is not None else official_weight_files()
    if task not in files:
        raise KeyError(f"no encoder weights listed for task {task!r}; listed: {sorted(files)}")
    fname = files[task]
    layer_map = {name: TASKONOMY_LAYERS[name] for name in layers}
    if normalize_outputs and "encoder_output" in layer_map:
        layer_map["encoder_output"] = "groupnorm"
    return ModelSpec(
        name=task,
        builder=TASKONOMY_BUILDER,
        builder_kwargs={"normalize_outputs": bool(normalize_outputs)},
        weights=resolve(weights_source, fname),
        sha256=sha_from_filename(fname),
        layers=layer_map,
        low_saturation=task in {canonical(t) for t in low_saturation_tasks},
    )


def user_spec(entry: Mapping[str, Any]) -> ModelSpec:
    """Specification of a user model from its config entry (config key ``models``)."""
    layers = {name: ("" if name == "output" else name) for name in entry["layers"]}
    return ModelSpec(
        name=entry["name"],
        builder=entry["builder"],
        builder_kwargs=dict(entry.get("builder_kwargs") or {}),
        weights=str(entry["weights"]),
        sha256=entry.get("sha256") or sha_from_filename(str(entry["weights"])),
        layers=layers,
        low_saturation=bool(entry.get("low_saturation", False)),
        resolution=entry.get("resolution"),
        origin=f"config key models, entry name={entry['name']}",
    )


def model_specs(cfg: Mapping[str, Any]) -> dict[str, ModelSpec]:
    """All model specifications of a validated configuration, in config order."""
    tcfg = cfg["taskonomy"]
    manifest_path = tcfg.get("weights_manifest")
    if manifest_path and not Path(manifest_path).exists():
        raise FileNotFoundError(f"config key taskonomy.weights_manifest: {manifest_path} does not exist")
    manifest = read_manifest(manifest_path) if manifest_path else None
    specs: dict[str, ModelSpec] = {}
    for task in cfg["tasks"]:
        specs[task] = taskonomy_spec(task, tcfg["weights_source"], manifest, tcfg["layers"],
                                     cfg["preprocessing"]["low_saturation_tasks"],
                                     tcfg["normalize_outputs"])
    for entry in cfg["models"]:
        specs[entry["name"]] = user_spec(entry)
    return specs


# --------------------------------------------------------------------------- building

def taskonomy_encoder(normalize_outputs: bool = False) -> nn.Module:
    """The visualpriors ``TaskonomyEncoder`` in eval mode (raw code unless ``normalize_outputs``)."""
    from visualpriors.taskonomy_network import TaskonomyEncoder

    net = TaskonomyEncoder(normalize_outputs=normalize_outputs, eval_only=True)
    return net.eval()


def import_builder(path: str):
    """Import ``'package.module:function'``."""
    module_name, _, func_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f"cannot import module {module_name!r} of builder {path!r}: {err}") from err
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no function {func_name!r} (builder {path!r})") from None


class BuilderError(TypeError):
    """A model's builder cannot be called with its configured arguments, or failed."""


def _annotated_numbers(annotation: Any) -> tuple[type, ...]:
    """The numeric types ``int`` / ``float`` an annotation allows, unless it also allows ``str``
    (then any value may be meant as a string): ``float`` -> (float,), ``int | None`` -> (int,)."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    if str in args or Any in args:
        return ()
    return tuple(t for t in args if t in (int, float))


def check_builder_kwargs(builder: Callable[..., Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Check ``kwargs`` against the builder's signature before calling it: every argument must
    exist (unless it takes ``**kwargs``) and a ``str`` value for a parameter annotated ``int`` or
    ``float`` is refused. Raises :class:`BuilderError` naming ``where``, the argument, its value
    and type. Builders without an inspectable signature are not checked."""
    try:
        sig = inspect.signature(builder, eval_str=True)
    except (TypeError, ValueError, NameError):
        try:
            sig = inspect.signature(builder)
        except (TypeError, ValueError):
            return
    params = sig.parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    unknown = [k for k in kwargs if k not in named]
    if unknown and not takes_any:
        raise BuilderError(f"{where}: builder_kwargs {unknown} are not arguments of the builder "
                           f"(it takes: {', '.join(named) or 'no keyword arguments'})")
    for key, value in kwargs.items():
        if key not in params or not isinstance(value, str):
            continue
        numbers = _annotated_numbers(params[key].annotation)
        if numbers:
            hint = (" (YAML reads a number such as 1.0e6 without a sign in the exponent as a string: "
                    "write 1.0e+6)" if float in numbers else "")
            raise BuilderError(f"{where}: builder argument {key}={value!r} is a str, but the builder "
                               f"annotates it {' | '.join(t.__name__ for t in numbers)}{hint}")


def build_model(spec: ModelSpec) -> nn.Module:
    """Instantiate the architecture of ``spec`` (no weights).

    The arguments are checked against the builder's signature first
    (:func:`check_builder_kwargs`); any exception raised by the builder is re-raised as
    :class:`BuilderError` naming the model and the builder."""
    where = f"model {spec.name!r} ({spec.origin}), builder {spec.builder}"
    builder = import_builder(spec.builder)
    check_builder_kwargs(builder, spec.builder_kwargs, where)
    try:
        model = builder(**spec.builder_kwargs)
    except Exception as err:  # noqa: BLE001 - user code may raise anything
        raise BuilderError(f"{where} failed with builder_kwargs {spec.builder_kwargs}: "
                           f"{type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise BuilderError(f"{where} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint (``{'state_dict': ...}`` or a bare state dict) safely (weights_only)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for corrupt files
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    if isinstance(ckpt, dict) and "state_dict" in ckpt and isinstance(ckpt["state_dict"], dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise ValueError(f"checkpoint {path} holds no state dict")
    return ckpt


def load_model(spec: ModelSpec, weights_path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Build ``spec`` and load its weights (strict), in eval mode on ``device``."""
    model = build_model(spec)
    state = read_state_dict(weights_path)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(f"weights {weights_path} do not fit model {spec.name!r} ({spec.builder}): {err}") from err
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"weights {weights_path} do not fit model {spec.name!r} ({spec.builder}): "
                         f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    for p in model.parameters():
        p.requires_grad_(False)
    return model.to(device).eval()


@contextmanager
def record_layers(model: nn.Module, layers: Mapping[str, str]) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager recording the outputs of ``layers`` (name -> module name) on each forward.

    The yielded dict is refilled by every forward pass; module name ``""`` records the output.
    """
    store: dict[str, torch.Tensor] = {}
    handles = []
    for name, module_name in layers.items():
        try:
            module = model.get_submodule(module_name) if module_name else model
        except AttributeError:
            raise KeyError(f"model has no module {module_name!r} (layer {name!r})") from None

        def hook(_m, _inp, out, _name=name):
            store[_name] = (out[0] if isinstance(out, (tuple, list)) else out).detach()

        handles.append(module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


# --------------------------------------------------------------------------- stand-ins

def _seed_for(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")


def random_encoder(seed: int, calibrate: bool = True, size: int = 128,
                   residual_scale: float = 0.1) -> dict[str, torch.Tensor]:
    """State dict of a seeded random ``TaskonomyEncoder`` that behaves like a trained one.

    * BatchNorm running statistics are calibrated on generated indoor scenes
      (:func:`tasksim.scenes.render_rgb`), so every layer sees unit-scale inputs;
    * the last BatchNorm of every residual branch (``bn3``) is scaled by ``residual_scale``, the
      ``zero_init_residual`` idea: blocks start near the identity, as trained ResNets largely are.
      Without it a random 16-block ResNet maps all images to nearly the same deep code (RDM
      spread ~0.007 at block4), a regime no trained network is in.
    """
    from tasksim.probe.preprocess import network_input
    from tasksim.scenes import render_rgb

    torch.manual_seed(seed)
    net = taskonomy_encoder()
    if calibrate:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average
        nn.Module.train(net, True)
        with torch.no_grad():
            net(network_input(render_rgb(16, size, seed=seed % (2**31)), False))
        nn.Module.train(net, False)
    with torch.no_grad():
        for name, m in net.named_modules():
            if name.endswith("bn3"):
                m.weight.mul_(residual_scale)
                m.bias.mul_(residual_scale)
    return {k: v.clone() for k, v in net.state_dict().items()}


def perturb(state: Mapping[str, torch.Tensor], scale: float, seed: int) -> dict[str, torch.Tensor]:
    """Add seeded Gaussian noise of relative size ``scale`` (times each tensor's std) to the
    learnable tensors of a state dict (BatchNorm running statistics are kept)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if v.is_floating_point() and not k.endswith(("running_mean", "running_var")) and v.numel() > 1:
            std = float(v.float().std()) or 1.0
            out[k] = v + scale * std * torch.randn(v.shape, generator=g, dtype=v.dtype)
        else:
            out[k] = v.clone()
    return out


def save_checkpoint(state: Mapping[str, torch.Tensor], out_dir: str | Path, task: str) -> Path:
    """Write ``{'state_dict': state}`` as ``<task>_encoder-<sha256>.pth`` in ``out_dir`` (atomic).

    The bytes, hence the name, depend on the weights only: ``torch.save`` to a path names the zip
    archive's top folder after that path, so the checkpoint is serialised in memory first."""
    import io

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"state_dict": dict(state)}, buf)
    data = buf.getvalue()
    final = out_dir / f"{task}_encoder-{hashlib.sha256(data).hexdigest()}.pth"
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
    return final


def write_standin_zoo(tasks: Sequence[str], out_dir: str | Path, seed: int = 0,
                      groups: Mapping[str, Sequence[str]] | None = None,
                      perturbation: float = 0.1) -> Path:
    """Write stand-in Taskonomy checkpoints for ``tasks`` and a ``SHA256SUMS`` manifest.

    Members of a group share one base network (seeded by the group name) plus independent seeded
    perturbations of relative size ``perturbation``; other tasks get independent networks.
    Returns the manifest path (written last, atomically: its presence means the zoo is complete).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    membership = {canonical(t): g for g, ts in (groups or {}).items() for t in ts}
    bases: dict[str, dict[str, torch.Tensor]] = {}
    lines = []
    for task in (canonical(t) for t in tasks):
        if task in membership:
            g = membership[task]
            if g not in bases:
                bases[g] = random_encoder(_seed_for(seed, f"group:{g}"))
            state = perturb(bases[g], perturbation, _seed_for(seed, f"member:{task}"))
        else:
            state = random_encoder(_seed_for(seed, f"task:{task}"))
        for old in out_dir.glob(f"{task}_encoder-*.pth"):
            old.unlink()
        path = save_checkpoint(state, out_dir, task)
        lines.append(f"{sha_from_filename(path.name)}  {path.name}")
        log.info("stand-in %s -> %s", task, path.name)
    with atomic_path(out_dir / "SHA256SUMS") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return out_dir / "SHA256SUMS"


def n_parameters(model: nn.Module) -> int:
    """Number of parameters of a model."""
    return int(sum(p.numel() for p in model.parameters()))


__all__ = ["BuilderError", "ModelSpec", "check_builder_kwargs", "TASKONOMY_LAYERS", "TASKS", "build_model",
           "import_builder", "load_model",
           "model_specs", "official_weight_files", "read_manifest", "read_state_dict",
           "record_layers", "sha_from_filename", "taskonomy_encoder", "user_spec",
           "write_standin_zoo"]
