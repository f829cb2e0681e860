"""Pretraining: the launch page (``/pretrain``: data directory, preset, overrides, validated
like ``workbench pretrain``; starts the CLI as a job; lists pretraining runs) and a run's
pretraining page (``/runs/<id>/pretrain``: live loss, tokens/s and MFU curves, device, the
checkpoint series, the analyses that take the run), plus the notebook ``PretrainWidget``.

- ``index_page``, ``run_page``: the pages; ``launch``: the form's validation and launch.
- ``figures``: the curves and device summary, shared by the page and the widget.
"""

PAGES = ("ui.pretrain.index_page", "ui.pretrain.run_page")
NAV = (("Pretrain", "/pretrain"),)
