"""BERT for sequence classification as the paper's authors built it: HF BertModel without its pooler, the
[CLS] token's last hidden state -> one Linear layer (no pooler, no dropout before the head). With
model.pretrained set it loads those weights; with pretrained=null it is built from the config sizes (random
init) for the vocabulary of the tokenizer trained on the data (offline runs, tests)."""
from torch import nn

from salsa.models.registry import register
from salsa.registry import UserError


class CLSClassifier(nn.Module):
    def __init__(self, encoder, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, x: dict):
        return self.head(self.encoder(**x).last_hidden_state[:, 0])


def bert(cfg, data):
    from transformers import BertConfig, BertModel

    if cfg.pretrained:
        try:
            encoder = BertModel.from_pretrained(cfg.pretrained, add_pooling_layer=False)
        except OSError as e:
            raise UserError(f"cannot load {cfg.pretrained!r} (offline and not in the HF cache?). Run once with internet, "
                            "or use model=bert_tiny (random init, tokenizer trained on the data).") from e
        return CLSClassifier(encoder, data.num_classes)
    config = BertConfig(vocab_size=data.extra["vocab_size"], hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                        num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate, pad_token_id=data.extra["pad_id"],
                        max_position_embeddings=max(512, data.input_shape[0]))
    return CLSClassifier(BertModel(config, add_pooling_layer=False), data.num_classes)


register("bert", accepts={"text"})(bert)
register("bert_tiny", accepts={"text"})(bert)
