"""Trainers that consume cxrdata shards: ``train lofi`` and ``train ldm`` (need the ``[train]`` extra).

The models themselves (building, loading, running them) are :mod:`cxrdata.models`; this package holds what
training adds: the training data from shards, the losses, the optimisation loops, checkpoints and metrics.

- :mod:`common`: seeds, processes (torch DDP), checkpoints (write side), metrics (CSV + TensorBoard).
- ``train ldm`` (seed 003): :mod:`ldm` (the training loop, the tuner's loss), :mod:`ldm_losses` (L_div, L_loc,
  Gaussian priors).
- ``train lofi`` (seeds 000/001): :mod:`lofi` (the loop), :mod:`lofi_recipe`, :mod:`lofi_data` (examples, batches),
  :mod:`lofi_objective` (the model's forward pass as the loss), :mod:`lofi_losses`.
"""
