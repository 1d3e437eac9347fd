"""The two models that consume cxrdata shards, as far as running them goes (needs the ``[train]`` extra).

Building a model from its recipe, loading it from a run folder or local weight folders (never downloading),
and running it over built shards: LoFi's box predictions and retrieval embeddings, the LDM's
cross-attention heatmaps. The trainers (:mod:`cxrdata.train`) build on this; the evaluations
(:mod:`cxrdata.evaluate`) read what it writes and never import a trainer.

- shared: :mod:`runtime` (device, offline mode, mixed precision), :mod:`inputs` (rows with an image, decoding),
  :mod:`checkpoints` (a run's checkpoints, read side), :mod:`prediction_files` (heatmap and box files).
- LoFi: :mod:`lofi_model` (the network), :mod:`lofi_towers` (the pretrained parts), :mod:`lofi_inputs` (pixels,
  report text, prompts), :mod:`lofi_run` (a run's model), :mod:`lofi_tiny` (random weights), :mod:`lofi_predict`
  (``predict lofi-boxes``), :mod:`lofi_encode` (embeddings for ``eval retrieval``).
- LDM: :mod:`ldm_recipe`, :mod:`ldm_model` (the frozen MONAI LDM and CLIP), :mod:`ldm_assets` (random weights in
  the bundle's formats), :mod:`ldm_codebook` (token codebook, tuned embeddings), :mod:`ldm_prompted` (the LDM with
  its codebook), :mod:`ldm_attention` (cross-attention hooks), :mod:`ldm_inputs` (the input crop),
  :mod:`ldm_heatmaps` (``heatmaps ldm``).
"""
