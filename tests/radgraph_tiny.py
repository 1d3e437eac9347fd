"""Build a randomly initialised RadGraph model in the radgraph package's own on-disk format.

The layout is exactly what ``radgraph.RadGraph(model_type=..., model_cache_dir=CACHE)`` reads, so the
package's real loading, inference and post-processing run on it offline::

    CACHE/<model_type>/config.json                          DyGIE config (reader, embedder, modules)
    CACHE/<model_type>/vocabulary/non_padded_namespaces.txt
    CACHE/<model_type>/vocabulary/<model_type>__ner_labels.txt       first line empty: null label = 0
    CACHE/<model_type>/vocabulary/<model_type>__relation_labels.txt
    CACHE/<model_type>/weights.th                           seeded state dict of the package's DyGIE model
    CACHE/_bert-<size>/                                     local BERT config + WordPiece vocabulary

The weights are random, so the entities are meaningless but have the real schema. ``size="tiny"`` is a
2-layer BERT for tests; ``size="base"`` has BERT-base dimensions (12 layers, 768 wide) for benchmarks.
Used by tests and ``benchmarks/radgraph_batching.py``; never downloads anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# RadGraph-XL's entity labels, in the order of the published archive's vocabulary.
XL_NER_LABELS = (
    "Anatomy::definitely present",
    "Observation::definitely present",
    "Observation::definitely absent",
    "Observation::uncertain",
    "Observation::measurement::definitely present",
    "Anatomy::uncertain",
    "Anatomy::definitely absent",
    "Anatomy::measurement::definitely present",
    "Observation::measurement::definitely absent",
    "Observation::measurement::uncertain",
    "Anatomy::measurement::uncertain",
)
V1_NER_LABELS = ("ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA")
RELATION_LABELS = ("modify", "located_at", "suggestive_of")

# Words that get a whole WordPiece each; anything else is split into characters.
_WORDS_TEXT = """
the a an of in at on to and or with without no not is are was were be been there this that which from
as by for may might likely possible possibly probable suggest suggests suggesting concerning represent
left right bilateral both lung lungs lobe lobes upper middle lower apical apex base bases basal bibasilar
basilar lingula lingular costophrenic angle angles pleural pleura space hemithorax perihilar hilar hilum
retrocardiac mediastinum mediastinal cardiac heart silhouette size contour aortic aorta knob diaphragm
hemidiaphragm chest thorax zone zones region field fields parenchyma airspace airspaces interstitial
vascular vasculature pulmonary atelectasis atelectatic opacity opacities opacification consolidation
consolidations pneumonia pneumothorax effusion effusions edema congestion cardiomegaly enlarged
enlargement enlarge mild mildly moderate moderately severe small large trace minimal new stable unchanged
improved improving worsening worsened increased decreased resolved resolving persistent residual
subsegmental segmental patchy focal diffuse streaky linear plate like scarring infiltrate infiltrates
infection aspiration tube catheter line wire pacemaker clip clips sternotomy fracture rib ribs spine
nodule mass lesion cm mm compared prior previous study exam radiograph film evidence acute process
abnormality normal clear well expanded seen identified noted present again otherwise limited low volumes
volume elevation elevated blunting blunted tip terminates above below carina svc atrium
"""
WORDS = _WORDS_TEXT.split()


def _wordpiece_vocab() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punct = list(".,;:!?()[]/-'\"%&+=<>*#@$_`~{}|^\\")
    vocab = specials + punct + chars + ["##" + c for c in chars + punct]
    seen = set(vocab)
    for word in WORDS:
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    return vocab


_BERT_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072},
}


def build_bert(folder: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write a local BERT folder (config + WordPiece vocabulary files) built with transformers."""
    from transformers import BertConfig, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = _wordpiece_vocab()
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=True).save_pretrained(str(folder))
    BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **_BERT_SIZES[size]).save_pretrained(
        str(folder)
    )
    return folder


def dygie_config(bert_dir: Path, *, max_span_width: int = 8, hidden_dims: int = 150) -> dict[str, Any]:
    """A DyGIE config in the layout of the published RadGraph archives (NER + relations only)."""
    bert = {"type": "pretrained_transformer_mismatched", "model_name": str(bert_dir), "max_length": 512}
    return {
        "dataset_reader": {
            "type": "dygie",
            "token_indexers": {"bert": dict(bert)},
            "max_span_width": max_span_width,
        },
        "model": {
            "type": "dygie",
            "embedder": {"token_embedders": {"bert": dict(bert)}},
            "initializer": {"regexes": [["_span_width_embedding.weight", {"type": "xavier_normal"}]]},
            "module_initializer": {"regexes": [[".*weight", {"type": "xavier_normal"}]]},
            "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
            "feature_size": 20,
            "max_span_width": max_span_width,
            "target_task": "relation",
            "feedforward_params": {"num_layers": 2, "hidden_dims": hidden_dims, "dropout": 0.4},
            "modules": {
                "coref": {"spans_per_word": 0.3, "max_antecedents": 100, "coref_prop": 0},
                "ner": {},
                "relation": {"spans_per_word": 0.5},
                "events": {
                    "trigger_spans_per_word": 0.3,
                    "argument_spans_per_word": 0.8,
                    "loss_weights": {"trigger": 0.2, "arguments": 1.0},
                },
            },
        },
    }


CALIBRATION_SENTENCES = (
    "Left lower lobe atelectasis.",
    "Mild pulmonary edema and small bilateral pleural effusions, left greater than right.",
    "No pneumothorax.",
    "Patchy opacity in the right upper lobe may represent pneumonia.",
    "The cardiac silhouette is enlarged.",
    "Streaky bibasilar opacities likely atelectasis, possibly aspiration.",
)


def build_random_radgraph(
    cache_dir: Path | str,
    model_type: str = "radgraph-xl",
    *,
    size: str = "tiny",
    seed: int = 0,
    entity_rate: float = 0.15,
    relation_rate: float = 0.3,
) -> Path:
    """Create ``cache_dir/<model_type>/`` holding a seeded random model; return that folder.

    After random initialisation the output biases of the entity and relation scorers are calibrated
    on a few sentences so that about ``entity_rate`` of candidate spans get an entity label (of varied
    kinds) and about ``relation_rate`` of candidate pairs a relation; untreated random weights label
    nearly every span with the same label, which makes a poor test of the plumbing.
    """
    import torch
    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules import text_field_embedders, token_embedders
    from radgraph.dygie.models import dygie

    cache_dir = Path(cache_dir)
    bert_dir = build_bert(cache_dir / f"_bert-{size}", size, seed)
    model_dir = cache_dir / model_type
    vocab_dir = model_dir / "vocabulary"
    vocab_dir.mkdir(parents=True, exist_ok=True)
    labels = V1_NER_LABELS if model_type == "radgraph" else XL_NER_LABELS
    (vocab_dir / "non_padded_namespaces.txt").write_text("*tags\n*labels\n", encoding="utf-8")
    (vocab_dir / f"{model_type}__ner_labels.txt").write_text("\n" + "\n".join(labels) + "\n", "utf-8")
    (vocab_dir / f"{model_type}__relation_labels.txt").write_text("\n".join(RELATION_LABELS) + "\n", "utf-8")
    config = dygie_config(bert_dir, hidden_dims=32 if size == "tiny" else 150)
    (model_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    vocab = Vocabulary.from_files(str(vocab_dir))
    bert_cfg = config["model"]["embedder"]["token_embedders"]["bert"]
    embedder = text_field_embedders.BasicTextFieldEmbedder(
        {
            "bert": token_embedders.PretrainedTransformerMismatchedEmbedder(
                model_name=bert_cfg["model_name"], max_length=bert_cfg["max_length"]
            )
        }
    )
    params = {k: v for k, v in config["model"].items()
              if k not in ("type", "embedder", "initializer", "module_initializer")}
    model = dygie.DyGIE(vocab=vocab, embedder=embedder, **params)
    # A private generator: the weights depend only on `seed`, whatever ran before in the process.
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("LayerNorm.weight"):
                tensor.fill_(1.0)
            elif tensor.dim() == 1:
                tensor.zero_()
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=gen) / tensor.shape[-1] ** 0.5)
        # Small mention scores, so that relation scores are not dominated by them.
        model._relation._mention_pruners[f"{model_type}__relation_labels"]._scorer[1]._module.weight.mul_(0.1)
    torch.save(model.state_dict(), model_dir / "weights.th")
    (vocab_dir / ".lock").unlink(missing_ok=True)
    _calibrate(cache_dir, model_type, entity_rate, relation_rate)
    return model_dir


def _calibrate(cache_dir: Path, model_type: str, entity_rate: float, relation_rate: float) -> None:
    """Set the scorers' biases from their inputs on CALIBRATION_SENTENCES (see build_random_radgraph).

    The relation module's mention pruner is also tied to the entity scorer (same hidden layers, mean of
    the label rows), so that the spans it keeps for relation scoring tend to be entities; otherwise
    relations between two entities, the only ones radgraph reports, would be rare.
    """
    import contextlib
    import io

    import torch
    from radgraph import RadGraph

    with contextlib.redirect_stdout(io.StringIO()):
        rg = RadGraph(model_type=model_type, model_cache_dir=str(cache_dir), cuda=-1)
    model = rg.model
    ner_scorer = model._ner._ner_scorers[f"{model_type}__ner_labels"]
    pruner_scorer = model._relation._mention_pruners[f"{model_type}__relation_labels"]._scorer
    rel_linear = model._relation._relation_scorers[f"{model_type}__relation_labels"]
    with torch.no_grad():
        _fit_bias(rg, ner_scorer[1]._module, entity_rate)
        pruner_scorer[0].load_state_dict(ner_scorer[0].state_dict())
        pruner_scorer[1]._module.weight.copy_(ner_scorer[1]._module.weight.mean(0, keepdim=True))
        pruner_scorer[1]._module.bias.zero_()
        _fit_bias(rg, rel_linear, relation_rate)
    (cache_dir / model_type / "vocabulary" / ".lock").unlink(missing_ok=True)
    torch.save(model.state_dict(), cache_dir / model_type / "weights.th")


def _fit_bias(rg: Any, linear: Any, rate: float) -> None:
    """Centre each output of ``linear`` and offset them so that about ``rate`` of rows have a max > 0."""
    import torch

    seen: list[torch.Tensor] = []
    hook = linear.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].reshape(-1, inp[0].shape[-1])))
    try:
        rg(list(CALIBRATION_SENTENCES))
    finally:
        hook.remove()
    scores = torch.cat(seen) @ linear.weight.T
    centred = scores - scores.mean(0)
    offset = torch.quantile(centred.max(1).values, 1.0 - rate)
    linear.bias.copy_(-scores.mean(0) - offset)
