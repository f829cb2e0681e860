"""Transformer Programs (Friedman et al., 2023): trainable discrete transformers that decompile
into exact Python programs.

Modules: ``config`` (settings, presets), ``data`` (encoding, user-data checks), ``model`` (the
relaxed model), ``discrete`` (the argmax program and its evaluator), ``runtime`` (the exact
selection semantics, inlined into exported programs), ``decompile``, ``verify``, ``compile``
(program -> TransformerBridge with its ground-truth circuit), ``train``, ``api`` (runs in the run
store) and ``cli``. Nothing is imported here so ``workbench --help`` stays fast.
"""
