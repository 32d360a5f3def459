"""PyTorch side: binarized layers, recipes, datasets, training, checkpoints and export to the IR.

Modules: ``layers`` (building blocks), ``export`` (model -> IR graph), ``checkpoint``,
``recipes`` (``models/<name>.py``), ``data``, ``train`` and ``evaluate``.
"""
