"""TOKENIZERS: the model's tokenizer config (conf/model/<name>.yaml: tokenizer) -> a transformers fast tokenizer.
`pretrained` loads a named one (HF hub or cache); `wordpiece` (vocabulary from the training texts) and
`bytes` are built with the `tokenizers` library, for offline runs of models built from a config."""
from __future__ import annotations

from pathlib import Path

from salsa.registry import Registry, UserError

TOKENIZERS = Registry("tokenizer")
SPECIAL = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


@TOKENIZERS.register("pretrained")
def pretrained(cfg, texts, data_root: Path):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.pretrained_name, cache_dir=str(data_root / "hf"))
    except OSError as e:
        raise UserError(f"cannot load the tokenizer {cfg.pretrained_name!r}: it is neither in {data_root / 'hf'} nor "
                        "downloadable (offline?). Run once with internet, or pick a model whose tokenizer is trained "
                        "on the data (model=bert_tiny / gpt2_tiny / bow).") from e
    if tokenizer.pad_token is None:  # GPT-2 has none; padding only matters for classification batches
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@TOKENIZERS.register("wordpiece")
def wordpiece(cfg, texts, data_root: Path):
    """BERT-style lower-cased WordPiece with [CLS] a [SEP] b [SEP] templates and segment ids. The vocabulary
    is built here, not by tokenizers' WordPieceTrainer, whose merge ties fall differently in every process
    (runs would not repeat): the most frequent words (ties alphabetical), then every character seen, alone
    and as a ##continuation, so that any word splits into known pieces."""
    from collections import Counter

    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word})
    pieces = [*SPECIAL.values(), *chars, *(f"##{c}" for c in chars)]
    words = [w for w, _ in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if len(w) > 1]
    vocab = {piece: i for i, piece in enumerate(pieces + words[:max(0, cfg.vocab_size - len(pieces))])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token=SPECIAL["unk_token"], max_input_chars_per_word=100))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre_tokenizer
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)


@TOKENIZERS.register("bytes")
def byte_level(cfg, texts, data_root: Path):
    """GPT-2's byte-level encoding without merges: one token per byte (256) plus <|endoftext|>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab["<|endoftext|>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def build_tokenizer(cfg, texts, data_root: Path):
    if cfg is None:
        raise UserError("this data set is text: pick a model with a tokenizer (its config has a `tokenizer` entry)")
    return TOKENIZERS[cfg.kind](cfg, texts, data_root)
