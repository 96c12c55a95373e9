"""BERT for sequence classification (transformers AutoModelForSequenceClassification: pooled [CLS] + linear).
With model.pretrained set it loads those weights; with pretrained=null it is built from the config sizes
(random init) for the vocabulary of the tokenizer trained on the data (offline runs, tests)."""
from torch import nn

from salsa.models.registry import register
from salsa.registry import UserError


class HFClassifier(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x: dict):
        return self.model(**x).logits


def bert(cfg, data):
    from transformers import AutoModelForSequenceClassification, BertConfig

    if cfg.pretrained:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(cfg.pretrained, num_labels=data.num_classes)
        except OSError as e:
            raise UserError(f"cannot load {cfg.pretrained!r} (offline and not in the HF cache?). Run once with internet, "
                            "or use model=bert_tiny (random init, tokenizer trained on the data).") from e
        return HFClassifier(model)
    config = BertConfig(vocab_size=data.extra["vocab_size"], hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                        num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate, pad_token_id=data.extra["pad_id"],
                        max_position_embeddings=max(512, data.input_shape[0]), num_labels=data.num_classes)
    return HFClassifier(AutoModelForSequenceClassification.from_config(config))


register("bert", accepts={"text"})(bert)
register("bert_tiny", accepts={"text"})(bert)
