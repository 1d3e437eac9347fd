"""Batched inference for the radgraph package's DyGIE model: many sentences per forward pass.

radgraph 0.1.18 runs one report per forward pass (its loader is fixed at one document, with autograd
on). DyGIE itself already works on a *document of many sentences*: BERT embeds them as one padded
batch, and entity scoring is per span. So a batch here is one DyGIE document whose sentences are the
input texts, built with the package's own preprocessing, reader and collate function, and run through
the package's own embedder, span extractor and NER module, under ``torch.inference_mode()``.

The one place where DyGIE couples the sentences of a document is the relation module: its span pruner
pads every sentence to the batch's largest beam, and its decoder then reads the padded rows of shorter
sentences. To give exactly the one-at-a-time result, the relation module runs on sub-batches of
sentences with the same token count (equal beams, no padding), which sorting by length makes large.
Outputs are rebuilt as one-sentence documents and decoded with the package's own ``postprocess_reports``,
so each result is the dict ``RadGraph.__call__`` would return for that text alone.

Models whose config turns on coreference or events (no published RadGraph model does) run one text per
pass through ``DyGIE.forward`` itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

Annotation = dict[str, Any]


@dataclass
class BatchOutput:
    """Per input text: radgraph's output dict, or None with a one-line reason in ``errors``."""

    annotations: list[Annotation | None]
    errors: dict[int, str] = field(default_factory=dict)


class BatchedRadGraph:
    """Runs a loaded ``radgraph.RadGraph`` on many texts per forward pass (see the module docstring)."""

    def __init__(self, radgraph: Any, batch_size: int = 32, max_batch_tokens: int = 4096,
                 max_relation_pairs: int = 16384) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model = radgraph.model
        self.reader = radgraph.reader
        self.model_type: str = radgraph.model_type
        self.device = radgraph.device
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_relation_pairs = max_relation_pairs
        weights = self.model._loss_weights
        self.batchable = (
            weights["coref"] == 0 and self.model._coref.coref_prop == 0 and weights["events"] == 0
            and weights["ner"] > 0 and weights["relation"] > 0
        )

    # -- public -------------------------------------------------------------------------------------

    def __call__(self, texts: Sequence[str]) -> BatchOutput:
        """Annotate ``texts``; results in input order, the same as ``RadGraph(texts)`` gives for each."""
        import torch
        from radgraph.utils import preprocess_reports

        texts = [t or "None" for t in texts]  # as RadGraph.__call__ does
        docs = preprocess_reports(texts, self.model_type)
        out = BatchOutput(annotations=[None] * len(texts))
        todo = []
        for i, doc in enumerate(docs):  # doc_key is str(i)
            if doc["sentences"][0]:
                todo.append(i)
            else:
                out.errors[i] = "no tokens after radgraph's tokenisation"
        with torch.inference_mode():
            for batch in self._plan(todo, docs):
                self._run_and_decode(batch, docs, out)
        for i, reason in sorted(out.errors.items()):
            logger.warning("radgraph failed on input %d (%s): %r", i, reason, texts[i][:200])
        return out

    # -- batching -----------------------------------------------------------------------------------

    def _plan(self, indices: list[int], docs: list[dict[str, Any]]) -> list[list[int]]:
        """Group inputs of similar length: at most ``batch_size`` texts and ``max_batch_tokens`` padded
        words per batch (a longer text goes alone)."""
        if not self.batchable:
            return [[i] for i in indices]
        order = sorted(indices, key=lambda i: len(docs[i]["sentences"][0]))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            length = len(docs[i]["sentences"][0])  # ascending: the longest in the batch so far
            if current and (len(current) >= self.batch_size
                            or (len(current) + 1) * length > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _run_and_decode(self, batch: list[int], docs: list[dict[str, Any]], out: BatchOutput) -> None:
        """Run one batch; if it raises, retry its texts one by one so one bad text costs only itself."""
        try:
            results = self._forward([docs[i] for i in batch])
        except Exception as exc:
            if len(batch) > 1:
                logger.debug("radgraph batch of %d failed (%s); retrying one by one", len(batch), exc)
                for i in batch:
                    self._run_and_decode([i], docs, out)
                return
            first_line = (str(exc).strip().splitlines() or [""])[0]
            out.errors[batch[0]] = f"radgraph inference failed: {type(exc).__name__}: {first_line}"
            return
        for i, result in zip(batch, results, strict=True):
            annotation, log = _postprocess(result)
            if annotation is None:
                lines = [ln for ln in log.splitlines()
                         if ln.strip() and not ln.startswith("Error in doc key")]
                out.errors[i] = f"radgraph post-processing failed: {lines[-1] if lines else 'no output'}"
            else:
                out.annotations[i] = annotation

    # -- the model ----------------------------------------------------------------------------------

    def _forward(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """DyGIE outputs (``Document.to_json()`` of one-sentence documents) for ``docs``."""
        if not self.batchable:
            return [self._forward_package(doc) for doc in docs]
        from radgraph.allennlp.nn import util
        from radgraph.dygie.data.dataset_readers.document import Document

        packed = {"doc_key": "batch", "dataset": self.model_type,
                  "sentences": [doc["sentences"][0] for doc in docs]}
        batch = self._tensorise(packed)
        model = self.model
        metadata = batch["metadata"][0]
        for sentence in metadata.sentences:
            sentence.sentence_start = 0  # every sentence is its own document in the output

        # As DyGIE.forward, for NER and relations only (the document dimension is 1).
        text = batch["text"]
        spans = batch["spans"].squeeze(0)
        text_embeddings = model._embedder(text, num_wrapping_dims=1).squeeze(0)
        text_mask = util.get_text_field_mask(text, num_wrapping_dims=1).float().squeeze(0)
        sentence_lengths = text_mask.sum(dim=1).long()
        span_mask = (spans[:, :, 0] >= 0).float()
        spans = spans.float().relu().long()
        span_embeddings = model._endpoint_span_extractor(text_embeddings, spans)
        ner = model._ner(spans, span_mask, span_embeddings, sentence_lengths, None, metadata)["predictions"]
        relations = self._relations(spans, span_mask, span_embeddings, sentence_lengths, metadata)

        results = []
        for doc, sentence, ner_s, rel_s in zip(docs, metadata.sentences, ner, relations, strict=True):
            sentence.predicted_ner = ner_s
            sentence.predicted_relations = rel_s
            results.append(Document(doc["doc_key"], self.model_type, [sentence]).to_json())
        return results

    def _relations(self, spans: Any, span_mask: Any, span_embeddings: Any, lengths: Any,
                   metadata: Any) -> list[list[Any]]:
        """The relation module on sub-batches of equal-length sentences (equal, unpadded beams)."""
        import torch
        from radgraph.dygie.data.dataset_readers.document import Document

        relation = self.model._relation
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(lengths.tolist()):
            by_length[n].append(i)
        predictions: list[list[Any]] = [[] for _ in range(len(metadata.sentences))]
        for n, members in by_length.items():
            n_spans = int(span_mask[members[0]].sum().item())
            beam = max(1, math.ceil(n * relation._spans_per_word))
            step = max(1, self.max_relation_pairs // (beam * beam))
            for start in range(0, len(members), step):
                part = members[start:start + step]
                ix = torch.tensor(part, device=spans.device)
                group = Document("group", metadata.dataset, [metadata.sentences[i] for i in part])
                result = relation(spans[ix, :n_spans], span_mask[ix, :n_spans],
                                  span_embeddings[ix, :n_spans], lengths[ix], None, group)
                for i, pred in zip(part, result["predictions"], strict=True):
                    predictions[i] = pred
        return predictions

    def _forward_package(self, doc: dict[str, Any]) -> dict[str, Any]:
        """One text through ``DyGIE.forward`` exactly as ``RadGraph.__call__`` runs it."""
        batch = self._tensorise(doc)
        output = self.model(**batch)
        return self.model.make_output_human_readable(output).to_json()

    def _tensorise(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The package's reader and collate function, then the model's device."""
        from radgraph.allennlp.data import allennlp_collate
        from radgraph.utils import batch_to_device

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*single token or no tokens.*")
            instance = self.reader.text_to_instance(doc)
        instance.index_fields(self.model.vocab)
        return batch_to_device(allennlp_collate([instance]), self.device)


def _postprocess(result: dict[str, Any]) -> tuple[Annotation | None, str]:
    """The package's ``postprocess_reports`` on one text. It prints a traceback and skips a text it
    fails on, so its output is captured and returned for the caller to report."""
    from radgraph.utils import postprocess_reports

    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        decoded = postprocess_reports([result])
    return decoded.get(result["doc_key"]), log.getvalue()
