"""The Feature Store on this machine: an online store (latest record per id, SQLite) and an
offline store in the service's own layout (Parquet, partitioned by event time), filled by the
same record builders the ingestion Lambda runs (pipeline_steps/feature_records.py).

    <store>/online.sqlite
    <store>/offline-store/<feature-group>/data/year=YYYY/month=MM/day=DD/hour=HH/<file>.parquet
    <store>/ingested/<sha256 of a raw file>.json     the ledger: files already ingested
"""

from __future__ import annotations

import sys
from pathlib import Path

# Step modules import each other by bare name (as in their containers and Lambdas).
_STEPS_DIR = str(Path(__file__).resolve().parents[3] / "pipeline_steps")
if _STEPS_DIR not in sys.path:
    sys.path.insert(0, _STEPS_DIR)
