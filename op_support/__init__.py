"""tinyir operator-support tables and deployability rules, one module per backend.

``rules.py`` is the vocabulary (Finding, Rule, Table), ``check.py`` runs a table over
a lowered graph, ``tflm.py`` / ``tinyengine.py`` / ``utensor.py`` are the tables,
``boards.py`` the board presets and ``report.py`` the report and its renderers.
"""
