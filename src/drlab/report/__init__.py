"""``drlab report``: a self-contained HTML page of runs or a sweep (see page.py)."""

from drlab.report.page import build_report

__all__ = ["build_report"]
