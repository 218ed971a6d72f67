"""Segment a whole dataset on Ray (extra ``[cluster]``: ``pip install 'universeg-plus[cluster]'``).

::

    from universeg_plus.cluster import segment_dataset

    run = segment_dataset("scans/**/*.nii.gz", "support/", "masks/", num_workers=4, skip_existing=True)
    run.counts      # {"ok": 9990, "failed": 10}
    run.report      # masks/segment-dataset-report.csv: input, output, status, error, seconds, worker
    segment_dataset(None, "support/", "masks/", only_failed=run.report)   # rerun what failed

Ray is imported only when a run starts; this package imports without it.
"""

from __future__ import annotations

from .jobs import Job, list_jobs
from .report import REPORT_FIELDS, read_report, rerun_jobs
from .run import REPORT_NAME, DatasetInterrupted, DatasetRun, segment_dataset

__all__ = [
    "REPORT_FIELDS",
    "REPORT_NAME",
    "DatasetInterrupted",
    "DatasetRun",
    "Job",
    "list_jobs",
    "read_report",
    "rerun_jobs",
    "segment_dataset",
]
