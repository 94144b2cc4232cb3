"""int8 residual branches (tasksim.extract.quantize): which blocks, exact restructuring, dtypes, errors.

End-to-end agreement with fp32 (encoder_output RDM Spearman >= 0.999) and resume are tested in
tests/test_extract.py."""
import pytest
import torch
from torch import nn

from tasksim.extract import check_precision, forward_layers, prepare_for_inference
from tasksim.extract.quantize import Branch, Int8Bottleneck, quantizable_blocks, quantize_residual_branches
from tasksim.probe.preprocess import network_input
from tasksim.scenes import render_rgb
from tasksim.zoo import TASKONOMY_LAYERS, random_encoder, taskonomy_encoder


@pytest.fixture(scope="module")
def encoder():
    net = taskonomy_encoder()
    net.load_state_dict(random_encoder(0, size=64))
    return net.eval()


def test_blocks_of_width_128_and_more_outside_recorded_layers(encoder):
    names = quantizable_blocks(encoder)
    # Taskonomy ResNet-50: layer1 is 64 wide (stays float); layer2-4 have 4 + 6 + 3 blocks
    assert names == [f"layer2.{i}" for i in range(4)] + [f"layer3.{i}" for i in range(6)] + \
        [f"layer4.{i}" for i in range(3)]
    # a recorded block *output* does not matter; a recorded module inside a block keeps it float
    assert quantizable_blocks(encoder, keep={"layer3", "layer3.1"}) == names
    assert "layer3.1" not in quantizable_blocks(encoder, keep={"layer3.1.conv2"})
    assert quantizable_blocks(encoder, min_width=512) == ["layer4.0", "layer4.1", "layer4.2"]


def test_restructured_block_computes_the_original_block_exactly(encoder):
    """relu(branch(x) + shortcut(x)) with the float branch == visualpriors' Bottleneck.forward,
    for a block with a convolutional shortcut, one with a max-pool shortcut and one identity."""
    torch.manual_seed(0)
    for name, x in (("layer3.0", torch.randn(2, 512, 8, 8)), ("layer2.3", torch.randn(2, 512, 8, 8)),
                    ("layer4.1", torch.randn(2, 2048, 8, 8))):
        block = encoder.get_submodule(name)
        with torch.no_grad():
            ref = block(x.clone())
            got = Int8Bottleneck(Branch(block), block.downsample)(x.clone())
        torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_int8_model_dtypes_and_the_callers_model_untouched(encoder):
    layers = dict(TASKONOMY_LAYERS)
    calib = [network_input(render_rgb(4, 256, seed=5), True)]
    m = prepare_for_inference(encoder, layers, "int8", calibration=calib)
    int8_blocks = {n for n, mod in m.named_modules() if isinstance(mod, Int8Bottleneck)}
    assert int8_blocks == set(quantizable_blocks(encoder))
    assert not any(isinstance(mod, Int8Bottleneck) for mod in encoder.modules())
    assert encoder.layer2[0].conv1.weight.dtype == torch.float32
    # float parts in bf16 (shortcut convolutions included), compress1 in fp32, branches packed int8
    assert m.layer1[0].conv1.weight.dtype == torch.bfloat16
    assert m.layer3[0].shortcut[0].weight.dtype == torch.bfloat16
    assert m.compress1.weight.dtype == torch.float32
    assert any("quantized" in type(mod).__module__ for mod in m.layer3[0].branch.modules())
    out = forward_layers(m, layers, network_input(render_rgb(2, 256, seed=6), True, channels_last=True), "int8")
    assert out["block4"].shape == (2, 2048, 16, 16) and out["block4"].dtype == torch.float32
    assert torch.isfinite(out["encoder_output"]).all()


def test_int8_branches_are_close_to_float(encoder):
    """Block outputs of the int8 model stay within a few percent of fp32 (relative RMS)."""
    layers = {"block3": "layer3", "block4": "layer4"}
    calib = [network_input(render_rgb(8, 256, seed=5), True)]
    m = prepare_for_inference(encoder, layers, "int8", channels_last=False, fold_bn=True, calibration=calib)
    x = network_input(render_rgb(4, 256, seed=8), True)
    ref = forward_layers(encoder, layers, x, "fp32")
    got = forward_layers(m, layers, x, "int8")
    for k in layers:
        rel = ((got[k] - ref[k]).norm() / ref[k].norm()).item()
        assert rel < 0.05, f"{k}: relative error {rel:.3f}"


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no ResNet bottleneck"):
        quantize_residual_branches(nn.Sequential(nn.Conv2d(3, 8, 3)).eval(), [torch.zeros(1, 3, 8, 8)])
    with pytest.raises(ValueError, match="CPU only.*cuda"):
        check_precision("int8", torch.device("cuda"))
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        check_precision("fp16", torch.device("cpu"))
    net = taskonomy_encoder().eval()
    with pytest.raises(ValueError, match="at least one image"):
        quantize_residual_branches(net, [])


def test_freed_memory_is_retained_exactly_where_libc_is_glibc():
    import platform

    from tasksim.snakeutils import retain_freed_memory

    assert retain_freed_memory() is (platform.libc_ver()[0] == "glibc")
