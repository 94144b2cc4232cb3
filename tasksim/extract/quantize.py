"""int8 residual branches: static int8 quantization of the ResNet bottleneck branches, with the
residual stream kept in floating point.

A bottleneck computes ``relu(branch(x) + shortcut(x))`` with ``branch = conv1-bn-relu-conv2-bn-relu-
conv3-bn``. The *stream* (the block inputs and outputs, and the shortcut) carries the
representation; each branch adds a correction to it. Quantizing the whole network to int8 puts
8-bit rounding on the stream itself at every block; on the Taskonomy encoder that costs
encoder_output RDM agreement with fp32 (Spearman 0.998, benchmarks/bench_extract.py
``--full-int8``). Rounding only *inside* the branches is attenuated by the float stream: the
agreement stays above bf16's while the branch convolutions, about 90 % of the FLOPs of the
quantized stages, run on the int8 dot-product units (AVX-512 VNNI: four times the fp32 rate).

What is quantized, and how (PyTorch's FX graph-mode post-training quantization):

* each branch: weights int8, symmetric, one scale per output channel; activations uint8, one
  scale per tensor, ranges from a histogram observer (L2-optimal clipping) run on calibration
  images; branch input quantized on entry, branch output dequantized on exit;
* the shortcut (a strided 1x1 convolution where the block changes width, else the identity), the
  addition and the final ReLU stay in floating point: the shortcut convolution *is* the stream at
  the start of a stage, and rounding it to 8 bits was the largest single loss of the whole-network
  int8 path;
* blocks whose branch width (conv2 channels) is below ``min_width`` stay in floating point: on
  narrow, high-resolution blocks (Taskonomy's layer1) quantize/dequantize traffic outweighs the
  int8 gain, so they are faster in bf16;
* 8-bit activations need int32 accumulation (VNNI); on CPUs without it the observers use 7 bits
  (``reduce_range``) so FBGEMM's int16 intermediate sums cannot saturate.

The quantized kernels (FBGEMM / oneDNN, engine ``x86``) are CPU-only.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Collection, Iterable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from tasksim.extract.fold import set_submodule

log = logging.getLogger(__name__)

#: Narrowest branch (conv2 output channels) worth quantizing; Taskonomy: layer2-layer4 (128-512).
MIN_WIDTH = 128


def cpu_has_vnni() -> bool:
    """True where /proc/cpuinfo lists an int8 dot-product extension (AVX-512 VNNI or AVX-VNNI)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


@contextlib.contextmanager
def _quiet_torch_ao() -> Iterator[None]:
    """Silence torch.ao.quantization's deprecation notices (the FX API is what the pinned torch has)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\.ao\.quantization")
        warnings.filterwarnings("ignore", message=r".*(quantiz|_empty_affine_quantized).*")
        yield


def int8_qconfig(reduce_range: bool):
    """Per-channel symmetric int8 weights; uint8 per-tensor activations from a histogram observer
    (7 bits where ``reduce_range``)."""
    from torch.ao.quantization import HistogramObserver, PerChannelMinMaxObserver, QConfig

    hi = 127 if reduce_range else 255
    return QConfig(activation=HistogramObserver.with_args(reduce_range=False, quant_min=0, quant_max=hi),
                   weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                             qscheme=torch.per_channel_symmetric))


def _bottleneck_classes() -> tuple[type, ...]:
    from visualpriors.taskonomy_network import Bottleneck

    return (Bottleneck,)


class Branch(nn.Module):
    """The residual branch of a bottleneck, ``bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))))``.

    Batch norms already folded into their convolution (``nn.Identity``) are left out and the ReLU
    is ``F.relu``, so that the traced graph is conv-relu / conv-bn-relu, the patterns FX fuses into
    one quantized kernel (an identity between them, or ``torch.relu``, which the x86 backend does
    not fuse, would cost a dequantize / quantize pair per convolution)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = block.conv1, block.conv2, block.conv3
        for i in (1, 2, 3):
            bn = getattr(block, f"bn{i}")
            setattr(self, f"bn{i}", None if isinstance(bn, nn.Identity) else bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = F.relu(out if self.bn1 is None else self.bn1(out))
        out = self.conv2(out)
        out = F.relu(out if self.bn2 is None else self.bn2(out))
        out = self.conv3(out)
        return out if self.bn3 is None else self.bn3(out)


class Int8Bottleneck(nn.Module):
    """``relu(branch(x) + shortcut(x))`` with an int8 ``branch`` (float32 in, float32 out) and the
    shortcut, addition and ReLU in floating point (under the caller's autocast, if any).

    ``branch`` is first the observed float branch (calibration), then the converted int8 one.
    Dtype and memory-format conversions (``.to(...)``) apply to the shortcut only: the int8
    weights are packed for the quantized kernels and must not be cast."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None):
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            out = self.branch(x.float())
        out += x if self.shortcut is None else self.shortcut(x)
        return out.relu_()

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's signature
        if self.shortcut is not None:
            self.shortcut._apply(fn, recurse)
        return self


def quantizable_blocks(model: nn.Module, keep: Collection[str] = (), min_width: int = MIN_WIDTH) -> list[str]:
    """Names of the bottleneck blocks of ``model`` whose branch can be made int8: branch width
    (conv2 channels) at least ``min_width``, and no recorded module (``keep``) inside the block
    (a recorded block *output* is fine: it is unchanged)."""
    classes = _bottleneck_classes()
    names = []
    for name, mod in model.named_modules():
        if not isinstance(mod, classes) or mod.conv2.out_channels < min_width:
            continue
        if any(k.startswith(name + ".") for k in keep):
            continue
        names.append(name)
    return names


def quantize_residual_branches(model: nn.Module, calibration: Iterable[torch.Tensor],
                               keep: Collection[str] = (), min_width: int = MIN_WIDTH) -> list[str]:
    """Replace the branches of the bottleneck blocks of an eval-mode, float32, CPU ``model`` by
    static int8 ones, in place, calibrated by running ``model`` on the ``calibration`` batches
    (preprocessed network inputs). Returns the names of the replaced blocks (see
    :func:`quantizable_blocks`); raises ``ValueError`` where there are none."""
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if model.training:
        raise ValueError("int8 quantization needs a model in eval mode (call model.eval())")
    names = quantizable_blocks(model, keep, min_width)
    if not names:
        raise ValueError(f"precision 'int8' found no ResNet bottleneck blocks of width >= {min_width} "
                         f"outside the recorded layers in model {type(model).__name__}; "
                         "use precision 'bf16' for this model")
    if "x86" not in torch.backends.quantized.supported_engines:
        raise RuntimeError("this torch build has no x86 quantized engine (FBGEMM/oneDNN); use precision 'bf16'")
    torch.backends.quantized.engine = "x86"
    reduce_range = not cpu_has_vnni()
    mapping = QConfigMapping().set_global(int8_qconfig(reduce_range))
    blocks: dict[str, Int8Bottleneck] = {}
    with _quiet_torch_ao():
        for name in names:
            block = model.get_submodule(name)
            example = (torch.zeros(1, block.conv1.in_channels, 8, 8),)
            observed = prepare_fx(Branch(block).eval(), mapping, example)
            blocks[name] = Int8Bottleneck(observed, block.downsample)
            set_submodule(model, name, blocks[name])
        n = 0
        with torch.inference_mode():
            for x in calibration:
                model(x.float())
                n += len(x)
        if n == 0:
            raise ValueError("int8 calibration needs at least one image")
        for block in blocks.values():
            block.branch = convert_fx(block.branch)
    log.info("int8 residual branches in %d blocks (%s..%s), calibrated on %d images%s", len(names),
             names[0], names[-1], n, "; 7-bit activations (no VNNI)" if reduce_range else "")
    return names
