"""The job engine and the application layer over it.

- :mod:`~verticals.core.jobs.service`: :class:`JobService`, the one place the job use cases live;
- :mod:`~verticals.core.jobs.engine`: submitting (streaming, validating, storing items), running a chunk,
  finishing a job and delivering its events;
- :mod:`~verticals.core.jobs.executor`: where chunks run (the ``Executor`` protocol, the local executor);
- :mod:`~verticals.core.jobs.pipeline`: one batch through the hooks and ``Task.run``, with bisection;
- :mod:`~verticals.core.jobs.predict`: synchronous predict (no job stored);
- :mod:`~verticals.core.jobs.export`: results to CSV / JSONL / Parquet / folders / zip.
"""
