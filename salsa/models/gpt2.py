"""GPT-2 (transformers GPT2LMHeadModel) trained from scratch as in nanoGPT; its context is the data set's block size."""
from torch import nn

from salsa.models.registry import register


class LMLogits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(input_ids=x).logits


def gpt2(cfg, data):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=data.num_classes, n_positions=data.input_shape[0], n_embd=cfg.hidden, n_layer=cfg.layers,
                        n_head=cfg.heads, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout)
    return LMLogits(GPT2LMHeadModel(config))


register("gpt2", accepts={"lm"})(gpt2)
register("gpt2_tiny", accepts={"lm"})(gpt2)
