"""The validation gate (``workbench.validate``) and what it is made of, one module each:

- :mod:`~workbench.validation.config`: the thresholds, their defaults, a TOML file;
- :mod:`~workbench.validation.stats`: HAC mean tests, Sharpe standard errors, PSR, DSR, Holm;
- :mod:`~workbench.validation.walkforward`: holdout and walk-forward splits;
- :mod:`~workbench.validation.lookahead`: the prefix and perturbation tests;
- :mod:`~workbench.validation.gate` and :mod:`~workbench.validation.report`: the gates,
  ``validate()`` and its report; :mod:`~workbench.validation.charts`: the report's charts;
- :mod:`~workbench.validation.command`: ``workbench validate``.

Nothing is imported here: the CLI loads the command without statsmodels until it runs.
"""
