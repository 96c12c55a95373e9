"""Every test runs offline: no W&B uploads, no Hugging Face hub."""
import os

for name, value in {"WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items():
    os.environ.setdefault(name, value)
