"""Every test runs offline: no W&B uploads, no Hugging Face hub, and every other download (torchvision's CIFAR,
on by default in run.py) goes to a closed port on this machine, so it fails at once without touching the network."""
import os

OFFLINE = {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}
for name, value in OFFLINE.items():
    os.environ[name] = value
