"""The runs API: start runs and read their records (/v1/runs)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("runs_api", __name__)
