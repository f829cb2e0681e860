"""Prior localisation: the prior page (``/prior``: launch ``workbench probes prior`` or
``prior-finetune`` as a job, checked like the CLI; the prior jobs; the runs with prior results)
and a run's prior page (``/runs/<id>/prior``: accuracy by prior bin with the instruction
baseline, error vs prior, R² of the prior by layer against the shuffled control with the
localised layers marked, and the before / after comparison of a finetune, linked to its parent),
plus the notebook ``PriorWidget``. Figures read stored results only.

- ``index_page``, ``run_page``: the pages; ``launch``: the form's validation and the jobs.
- ``results``: reading the stored analysis and finetune results (both storage layouts).
- ``figures``: the figures and tables, shared by the pages and the widget; ``widgets``.
"""

PAGES = ("ui.prior.index_page", "ui.prior.run_page")
NAV = (("Prior", "/prior"),)
