"""Evaluation: a task's results scored against gold labels, and the stored runs.

- :mod:`~verticals.core.evaluation.scoring`: an evaluation run as a job, its scoring, gates and comparisons;
- :mod:`~verticals.core.evaluation.runs`: the ``eval_runs`` table and its queries.

The evaluators themselves (how a task is scored) are part of the plugin contract:
:mod:`verticals.contract.evaluators`.
"""
