"""Every paper preset (conf/experiment/paper_*.yaml and extra_*.yaml) trains on CUDA through the harness, in fp32 and
bf16 (ResNets in channels_last there), and compiled (one preset per model family, below), on tiny real-format files.
The presets keep their model (ResNet-34/50, BERT-base sizes, GPT-2 124M, ViT-S, the MLP), trainer and line search
(optimizer=salsa, the paper's ADAM SaLSa, so trial forwards run); only the data, the batch and the step count shrink."""
import gc
import math

import pytest
import torch

from tests.gpu.conftest import need

IMAGES = ("trainer.batch_size=16",)
GLUE = ("model.pretrained=null", "model.tokenizer.kind=wordpiece", "+model.tokenizer.vocab_size=4000",  # offline: no hub
        "dataset.max_length=32", "trainer.batch_size=8")
PRESETS = {  # preset: (its tiny overrides, a module it needs)
    "paper_cifar10": (IMAGES, None),
    "paper_cifar100": (IMAGES, None),
    "paper_imagenet": (("dataset.resize=40", "dataset.crop=32", "dataset.num_workers=0", "trainer.batch_size=6"), None),
    "paper_sst2": (GLUE, "datasets"),
    "paper_mrpc": (GLUE, "datasets"),
    "paper_qnli": (GLUE, "datasets"),
    "paper_mnli": (GLUE, "datasets"),
    # the paper's 28 micro-batches per step, of 2 sequences each (nanoGPT's .bin files)
    "paper_gpt2": (("dataset.subdir=owt_bin", "dataset.block_size=32", "dataset.bin_vocab_size=300", "trainer.batch_size=56"), None),
    "extra_cifar10_vit": (IMAGES, None),
    "extra_mnist1d_mlp": ((), "mnist1d"),
}
# compiled: one preset per model family, for the directory's 8 minutes (Inductor takes about a minute per model):
# ResNet-34 stands for the ResNets (ResNet-50, ImageNet's, is compiled nowhere here), BERT-base for the GLUE rows
COMPILED = ("paper_cifar10", "paper_sst2", "paper_gpt2", "extra_cifar10_vit", "extra_mnist1d_mlp")
MODES = {"fp32": ("trainer.precision=fp32",), "bf16": ("trainer.precision=bf16",),
         "compile": ("trainer.precision=fp32", "trainer.compile=true")}
CASES = [(p, m) for m in MODES for p in PRESETS if m != "compile" or p in COMPILED]  # every preset uncompiled first


@pytest.mark.parametrize("preset,mode", CASES)
def test_paper_preset_trains_on_cuda(preset, mode, device, compose, data_root, tmp_path):
    overrides, module = PRESETS[preset]
    if module:
        need(module, f"{preset} loads its data with it")
    from salsa.train.runner import run

    cfg = compose(f"experiment={preset}", "optimizer=salsa", f"trainer.device={device.type}", "trainer.epochs=1", "trainer.max_steps=2",
                  "trainer.eval_batch_size=32", "trainer.log_every=1", f"paths.data={data_root}", f"paths.root={tmp_path}",
                  "download=false", *overrides, *MODES[mode])
    try:
        summary, run_dir, trained = run(cfg)
    finally:
        torch._dynamo.reset()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    t, m = summary["totals"], summary["metrics"]
    assert trained and summary["status"] == "finished" and t["steps"] == 2
    assert t["forwards"] > t["steps"]                          # line-search trials ran (through the compiled model too)
    assert math.isfinite(m["final_train_loss"]) and math.isfinite(m["val_loss_final"])
    assert ("gpu:" in summary["env"]["hardware"]) == (device.type == "cuda")
    assert summary["env"]["numerics"]["precision"] == MODES[mode][0].split("=")[1]
    assert (run_dir / "checkpoint.pt").exists()


def test_resnets_run_channels_last_under_bf16_with_the_nchw_numbers(device, compose):
    from salsa.data import Data
    from salsa.models import MODELS
    from salsa.train.loop import memory_format

    cfg = compose("experiment=paper_cifar10", "trainer.precision=bf16", f"trainer.device={device.type}")
    if device.type == "cuda":  # auto: channels_last under bf16 on CUDA only
        assert memory_format(cfg.trainer, device) == torch.channels_last
    data = Data(None, None, None, kind="image", num_classes=10, input_shape=(3, 32, 32))
    torch.manual_seed(0)
    nchw = MODELS["resnet34"].build(cfg.model, data).to(device).eval()
    nhwc = MODELS["resnet34"].build(cfg.model, data).to(device, memory_format=torch.channels_last).eval()
    nhwc.load_state_dict(nchw.state_dict())
    convs = [m.weight for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    x = torch.randn(8, 3, 32, 32, device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
        a, b = nchw(x).float(), nhwc(x).float()
    # other kernels and summation orders in bf16 (resolution 2^-8 per operation, 34 layers deep): a few percent of the
    # logits' scale at most; a layout read wrongly gives other logits altogether
    assert (a - b).abs().max() <= 2 ** -4 * a.abs().max()
