"""PyTorch side: binarized layers, recipes, datasets, training, checkpoints and export to the IR.

Modules: ``layers`` (building blocks), ``export`` (model -> IR graph), ``export_resnet``
(binarized residual networks -> IR graph, and their PyTorch integer path), ``checkpoint``,
``recipes`` (``models/<name>.py``), ``data``, ``train``, ``evaluate``, ``prune`` and
``compress``.
"""
