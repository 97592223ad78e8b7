"""Local drift report: score every month of the bundled data against a baseline.json.

`mlops local drift` calls run_local_drift() and prints format_monthly_table(). The month's
encoded features are built with the preprocess step's own code (same joins, same encoding
with the baseline's vocabulary) and scored with the drift step's own code, so the local
numbers are the ones the scheduled job would produce on a month of captured traffic.
Writes drift_by_month.json (the dashboard data) and drift_by_month.png (a PSI heatmap).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the chart only goes to a file

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# The step scripts import their siblings by bare name (that is how they run in the container).
# Found next to this package, not imported: the `mlops` console script does not run from the
# repository root, so `pipeline_steps` is not importable there.
_STEPS_DIR = str(Path(__file__).resolve().parents[2] / "pipeline_steps")
if _STEPS_DIR not in sys.path:
    sys.path.insert(0, _STEPS_DIR)

import drift  # noqa: E402
import feature_schema  # noqa: E402
import preprocess  # noqa: E402
import step_io  # noqa: E402

JSON_FILE = "drift_by_month.json"
PNG_FILE = "drift_by_month.png"
DRIFT_MARK = "*"


class DriftReportError(Exception):
    """A bad input (baseline, data folder): the CLI prints it as one ERROR line."""


def run_local_drift(
    baseline_path: Path,
    data_dir: Path,
    out_dir: Path,
    thresholds: drift.Thresholds | None = None,
) -> dict[str, Any]:
    """Score each month in data_dir against the baseline; write the JSON and PNG; return it."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DriftReportError(f"--out {out} is a file; give a folder")
    try:
        baseline = drift.load_baseline(Path(baseline_path))
        encoded, months = monthly_features(Path(data_dir), baseline)
    except step_io.StepError as exc:
        raise DriftReportError(str(exc)) from exc
    result = score_months(baseline, encoded, months, thresholds or drift.Thresholds())
    result["baseline"] = str(baseline_path)
    result["data_dir"] = str(data_dir)
    safe = drift.json_safe(result)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / JSON_FILE).write_text(json.dumps(safe, indent=2, allow_nan=False) + "\n")
        plot_monthly_psi(safe, out / PNG_FILE)
    except OSError as error:
        raise DriftReportError(
            f"--out {out}: cannot write the report ({error.strerror or error}); give a "
            "writable folder"
        ) from None
    return safe


def monthly_features(data_dir: Path, baseline: dict[str, Any]) -> tuple[pd.DataFrame, pd.Series]:
    """Encoded FEATURE_ORDER columns of every flown flight, and its "YYYY-MM" month."""
    folder = step_io.existing_dir(data_dir, "data folder")
    tables = {name: step_io.read_table(folder, name) for name in ("flights", "weather", "planes")}
    features = preprocess.build_features(tables["flights"], tables["weather"], tables["planes"])
    vocabulary = {
        name: list(baseline["features"][name]["vocabulary"])
        for name in feature_schema.CATEGORICAL_FEATURES
    }
    encoded = preprocess.encode(features, vocabulary)[list(baseline["feature_order"])]
    months = pd.to_datetime(features["flight_date"]).dt.strftime("%Y-%m")
    return encoded, months


def score_months(
    baseline: dict[str, Any],
    encoded: pd.DataFrame,
    months: pd.Series,
    thresholds: drift.Thresholds,
) -> dict[str, Any]:
    split = baseline.get("split") or [None, None]
    rows = []
    for month in sorted(months.unique()):
        scores = drift.score_frame(baseline, encoded.loc[(months == month).to_numpy()], thresholds)
        rows.append(
            {
                "month": month,
                "records": int((months == month).sum()),
                "in_baseline": _month_in_split(month, split),
                **scores["overall"],
                "features": {
                    name: {
                        "status": result["status"],
                        "psi": result["psi"],
                        "distance": result.get("ks", result.get("l_infinity")),
                        "outside_baseline_range": result.get("outside_baseline_range"),
                        "missing_fraction": result["missing_fraction"],
                    }
                    for name, result in scores["features"].items()
                },
            }
        )
    return {
        "baseline_split": baseline.get("split"),
        "thresholds": {
            "psi": thresholds.psi,
            "distance": thresholds.distance,
            "min_records": thresholds.min_records,
        },
        "ignored_features": sorted(thresholds.ignored),
        "feature_order": list(baseline["feature_order"]),
        "months": rows,
    }


def _month_in_split(month: str, split: list[str | None]) -> bool:
    start, end = split[0], split[1] if len(split) > 1 else None
    return bool(start and end and start[:7] <= month <= end[:7])


def format_monthly_table(result: dict[str, Any]) -> str:
    """Rows = months, columns = each feature's PSI; `*` drift, `-` too few records,
    parentheses = an ignored (calendar) feature."""
    names = result["feature_order"]
    widths = [max(len(n), 7) for n in names]
    header = f"{'month':<13}{'records':>8}  " + " ".join(
        f"{n:>{w}}" for n, w in zip(names, widths, strict=True)
    )
    lines = [header]
    for row in result["months"]:
        label = row["month"] + (" train" if row["in_baseline"] else "")
        cells = [f"{_cell(row['features'][n]):>{w}}" for n, w in zip(names, widths, strict=True)]
        lines.append(f"{label:<13}{row['records']:>8}  " + " ".join(cells))
    psi = result["thresholds"]["psi"]
    lines.append(
        f"PSI per feature; {DRIFT_MARK} = drift (PSI >= {psi} or distance >= "
        f"{result['thresholds']['distance']}), - = fewer than "
        f"{result['thresholds']['min_records']} values, (x) = ignored calendar feature"
    )
    drifting = [
        f"{r['month']}: {', '.join(r['drifted_features']) or 'none'}" for r in result["months"]
    ]
    lines.append("drifted features by month: " + "; ".join(drifting))
    return "\n".join(lines)


def _cell(feature: dict[str, Any]) -> str:
    if feature["psi"] is None:
        return "-"
    value = f"{feature['psi']:.2f}"
    if feature["status"] == "ignored":
        return f"({value})"
    return value + (DRIFT_MARK if feature["status"] == "drift" else " ")


def plot_monthly_psi(result: dict[str, Any], path: Path) -> None:
    """Heatmap of PSI (features x months), drift cells marked, the train months labelled."""
    names = result["feature_order"]
    months = result["months"]
    psi = np.array(
        [[_nan_if_none(m["features"][n]["psi"]) for m in months] for n in names], dtype=float
    )
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * max(len(months), 1), 0.45 * len(names) + 1.8))
    # PSI spans 0.001..10: a clipped log scale keeps both ends readable.
    shown = np.log10(np.clip(psi, 1e-3, 10.0))
    image = ax.imshow(shown, aspect="auto", cmap="viridis", vmin=-3, vmax=1)
    for i, name in enumerate(names):
        for j, month in enumerate(months):
            feature = month["features"][name]
            if feature["psi"] is None:
                continue
            text = f"{feature['psi']:.2f}" + ("*" if feature["status"] == "drift" else "")
            color = "white" if shown[i, j] < -0.5 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)
    ax.set_xticks(range(len(months)))
    ax.set_xticklabels(
        [m["month"] + ("\n(train)" if m["in_baseline"] else "") for m in months], fontsize=7
    )
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(
        [n + (" (ignored)" if n in result["ignored_features"] else "") for n in names], fontsize=7
    )
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label("log10 PSI")
    ax.set_title(
        f"Drift by month against the baseline (* = drift, PSI >= {result['thresholds']['psi']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)
