"""Probes and knowledge storage: the probes page (``/probes``: runs with probe or knowledge
results, and a form that launches ``workbench probes knowledge run`` as a job, checked like the
CLI; the page re-attaches to the job after a reload), a run's probes page
(``/runs/<id>/probes``: layer x position accuracy heatmap with the control task, selectivity and
the embedding / random-init baselines, accuracy over checkpoint steps; for knowledge results the
P-probe curves, the QA table across augmentations and protocols, Q-probe vs QA, and the Q-probe
over training) and the notebook widgets ``ProbesWidget`` and ``KnowledgeWidget``.

- ``index_page``, ``run_page``: the pages; ``launch``: the form's validation and its job.
- ``data``: the stored results the pages and widgets read (no Dash).
- ``figures``, ``knowledge_figures``: figure and table factories from the stored payloads,
  shared by the pages and the widgets; ``widgets``: the notebook widgets.
"""

PAGES = ("ui.probes.index_page", "ui.probes.run_page")
NAV = (("Probes", "/probes"),)
