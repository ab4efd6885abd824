"""The model host: model specs resolved to weights, loaded, cached, optimised and fine-tuned.

- :mod:`~verticals.core.models.host`: :class:`ModelHost` (the process's LRU cache of loaded models);
- :mod:`~verticals.core.models.sources`: where weights come from (override, promoted version, local, hub,
  packaged);
- :mod:`~verticals.core.models.inference`: loaded models by kind (embed, classify, tag, generate);
- :mod:`~verticals.core.models.runtimes`: ONNX Runtime variants; :mod:`~verticals.core.models.optimize`:
  the gate that keeps one;
- :mod:`~verticals.core.models.device`: device and precision policy; :mod:`~verticals.core.models.batching`:
  token-budget batches;
- :mod:`~verticals.core.models.training`: fine-tuning; :mod:`~verticals.core.models.versions`: the local model
  versions (promote, rollback).
"""
