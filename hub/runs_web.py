"""The runs pages: the list of runs and one run with its task graph, statuses, timings and logs."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("runs_web", __name__)
