"""Trainers that consume cxrdata shards: ``train lofi`` and ``train ldm`` (need the ``[train]`` extra).

- :mod:`common`: seeds, device, shards via ``datasets``, checkpoints/resume, metrics (CSV + TensorBoard),
  recipes, offline mode, mixed precision: shared by both trainers.
- ``train ldm`` (seed 003): :mod:`ldm` (recipe, training loop), :mod:`ldm_model` (the frozen MONAI LDM and
  CLIP), :mod:`ldm_codebook` (token codebook, prompts), :mod:`ldm_attention` (cross-attention hooks),
  :mod:`ldm_losses` (L_div, L_loc, Gaussian priors), :mod:`ldm_heatmaps` (``heatmaps ldm``).
- ``train lofi`` (seeds 000/001): :mod:`lofi` and its ``lofi_*`` modules.
"""
