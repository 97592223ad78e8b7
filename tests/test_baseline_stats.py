"""baseline_stats: the baseline.json contract on real data, and the drift distances."""

from __future__ import annotations

import json
import math

import baseline_stats
import feature_schema
import numpy as np
import pandas as pd
import preprocess
import pytest
import step_io
from helpers import bundled_data_dir
from scipy import stats


@pytest.fixture(scope="module")
def january() -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Encoded features of the real January 2013 flights, and their vocabulary."""
    folder = bundled_data_dir()
    flights = step_io.read_table(folder, "flights")
    flights = flights.loc[flights["month"] == 1]
    frame = preprocess.build_features(
        flights, step_io.read_table(folder, "weather"), step_io.read_table(folder, "planes")
    )
    vocabulary = preprocess.build_vocabulary(frame)
    encoded = preprocess.encode(frame, vocabulary)[list(feature_schema.FEATURE_ORDER)]
    return encoded, vocabulary


def test_baseline_follows_the_contract_on_real_data(january) -> None:
    encoded, vocabulary = january
    baseline = baseline_stats.compute_baseline(encoded, vocabulary, ["2013-01-01", "2013-01-31"])
    json.dumps(baseline, allow_nan=False)  # strict JSON: no NaN anywhere
    assert baseline["schema_version"] == 1
    assert baseline["feature_order"] == list(feature_schema.FEATURE_ORDER)
    assert baseline["rows"] == len(encoded)
    assert baseline["split"] == ["2013-01-01", "2013-01-31"]
    for name in feature_schema.NUMERIC_FEATURES:
        f = baseline["features"][name]
        values = encoded[name].to_numpy(dtype=float, na_value=np.nan)
        present = values[~np.isnan(values)]
        assert f["kind"] == "numeric"
        assert f["count"] == len(present)
        assert f["missing_fraction"] == pytest.approx(np.isnan(values).mean())
        assert f["mean"] == pytest.approx(present.mean())
        assert f["std"] == pytest.approx(present.std(ddof=1))
        assert len(f["quantiles"]) == 101
        assert f["quantiles"][0] == present.min() and f["quantiles"][-1] == present.max()
        assert np.all(np.diff(f["quantiles"]) >= 0)
        edges = np.asarray(f["bin_edges"])
        assert len(edges) <= 9 and np.all(np.diff(edges) > 0)
        assert len(f["bin_fractions"]) == len(edges) + 1
        assert sum(f["bin_fractions"]) == pytest.approx(1.0)
        # No empty training bin, even for discrete (hour) or zero-heavy (precip) features.
        assert min(f["bin_fractions"]) > 0, name
    # Real missing values exist (pressure is not always reported).
    assert baseline["features"]["pressure"]["missing_fraction"] > 0.01
    # A single month: month has one value, so no inner edge and one bin.
    assert baseline["features"]["month"]["bin_edges"] == []
    assert baseline["features"]["month"]["bin_fractions"] == [1.0]


def test_decile_bins_hold_tenths_of_a_continuous_feature(january) -> None:
    encoded, vocabulary = january
    temp = baseline_stats.compute_baseline(encoded, vocabulary)["features"]["temp"]
    assert len(temp["bin_edges"]) == 9
    assert all(0.07 < f < 0.13 for f in temp["bin_fractions"])


def test_categorical_frequencies_by_name_with_unknown(january) -> None:
    encoded, vocabulary = january
    frame = encoded.copy()
    frame["carrier"] = frame["carrier"].astype("float64")
    frame.loc[frame.index[:100], "carrier"] = -1  # unknown carrier
    frame.loc[frame.index[100:150], "carrier"] = np.nan  # missing
    carrier = baseline_stats.compute_baseline(frame, vocabulary)["features"]["carrier"]
    assert carrier["vocabulary"] == vocabulary["carrier"]
    assert set(carrier["frequencies"]) == {*vocabulary["carrier"], baseline_stats.UNKNOWN}
    assert sum(carrier["frequencies"].values()) == pytest.approx(1.0)
    assert carrier["count"] == len(frame) - 50
    assert carrier["missing_fraction"] == pytest.approx(50 / len(frame))
    assert carrier["frequencies"][baseline_stats.UNKNOWN] == pytest.approx(100 / (len(frame) - 50))
    ua = vocabulary["carrier"].index("UA")
    expected_ua = (frame["carrier"] == ua).sum() / (len(frame) - 50)
    assert carrier["frequencies"]["UA"] == pytest.approx(expected_ua)


def test_compute_baseline_names_missing_columns_and_vocabulary(january) -> None:
    encoded, vocabulary = january
    with pytest.raises(ValueError, match="temp"):
        baseline_stats.compute_baseline(encoded.drop(columns=["temp"]), vocabulary)
    without_dest = {k: v for k, v in vocabulary.items() if k != "dest"}
    with pytest.raises(ValueError, match="dest"):
        baseline_stats.compute_baseline(encoded, without_dest)


def test_all_missing_numeric_feature_has_empty_statistics() -> None:
    summary = baseline_stats.numeric_stats(np.full(10, np.nan))
    assert summary["count"] == 0 and summary["missing_fraction"] == 1.0
    assert summary["quantiles"] == [] and summary["mean"] is None


def test_category_counts_puts_out_of_vocabulary_codes_in_unknown() -> None:
    codes = np.array([0.0, 1.0, 1.0, -1.0, 7.0, 2.5])
    assert baseline_stats.category_counts(codes, 3).tolist() == [1, 2, 0, 3]


def test_bins_are_right_closed() -> None:
    edges = np.array([1.0, 2.0])
    assert baseline_stats.bin_index(edges, np.array([0.5, 1.0, 1.5, 2.0, 2.5])).tolist() == [
        0,
        0,
        1,
        1,
        2,
    ]


def test_psi_known_value_zero_for_identical_and_finite_for_empty_bins() -> None:
    expected = 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)
    assert baseline_stats.psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(expected)
    assert baseline_stats.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    value = baseline_stats.psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    assert math.isfinite(value) and value > 1.0


def test_ks_matches_scipy_on_continuous_samples() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=50_000)
    quantiles = np.quantile(reference, baseline_stats.PERCENTILES)
    for shift in (0.0, 0.3, 1.0):
        window = rng.normal(loc=shift, size=20_000)
        exact = stats.ks_2samp(reference, window).statistic
        # The baseline is known on a 1% grid only: within about one grid step of exact.
        assert baseline_stats.ks_distance(quantiles, window) == pytest.approx(exact, abs=0.012)


def test_ks_sees_a_change_in_the_mass_of_an_atom() -> None:
    rng = np.random.default_rng(3)
    reference = np.where(rng.random(20_000) < 0.9, 0.0, rng.exponential(0.2, 20_000))
    window = np.where(rng.random(20_000) < 0.5, 0.0, rng.exponential(0.2, 20_000))
    quantiles = np.quantile(reference, baseline_stats.PERCENTILES)
    assert baseline_stats.ks_distance(quantiles, window) == pytest.approx(0.4, abs=0.02)
    assert baseline_stats.ks_distance(quantiles, reference) <= 0.011


def test_outside_fraction_counts_only_traffic_beyond_the_training_range() -> None:
    rng = np.random.default_rng(11)
    quantiles = np.quantile(rng.normal(size=100_000), baseline_stats.PERCENTILES)
    points = baseline_stats.quantile_grid(quantiles)[0]

    def outside(window: np.ndarray) -> float:
        below, at_or_below = baseline_stats.ecdf_counts(points, window)
        return baseline_stats.outside_fraction(quantiles, below, at_or_below, len(window))

    assert outside(rng.normal(size=50_000)) == pytest.approx(0.02, abs=0.003)
    # Narrower than training: PSI and KS see a change, but nothing is out of range.
    narrow = rng.normal(scale=0.5, size=50_000)
    assert outside(narrow) < 0.001
    assert baseline_stats.ks_distance(quantiles, narrow) > 0.1
    shifted = rng.normal(loc=3.0, size=50_000)
    expected = stats.norm.sf(quantiles[99] - 3.0) + stats.norm.cdf(quantiles[1] - 3.0)
    assert outside(shifted) == pytest.approx(expected, abs=0.01)


def test_ks_ignores_missing_values() -> None:
    quantiles = np.linspace(0, 100, 101)
    values = np.concatenate([np.linspace(0, 100, 1001), np.full(500, np.nan)])
    assert baseline_stats.ks_distance(quantiles, values) <= 0.011


def test_l_infinity_and_chi_square() -> None:
    assert baseline_stats.l_infinity([0.5, 0.3, 0.2], [0.4, 0.3, 0.3]) == pytest.approx(0.1)
    # chi2 = 2 * 10^2 / 50 = 4 with one degree of freedom.
    assert baseline_stats.chi_square_pvalue([60, 40], [0.5, 0.5]) == pytest.approx(
        stats.chi2.sf(4.0, 1)
    )
    assert baseline_stats.chi_square_pvalue([5000, 5000], [0.5, 0.5]) == pytest.approx(1.0)
    assert math.isnan(baseline_stats.chi_square_pvalue([0, 0], [0.5, 0.5]))
