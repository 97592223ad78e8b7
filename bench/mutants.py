"""Mutation check: apply small realistic bugs one at a time and run the tests that should
catch each; print caught/total. Not part of `make test` (it runs pytest once per mutant).

    .venv/bin/python bench/mutants.py            # all mutants
    .venv/bin/python bench/mutants.py drift gate # only those whose name contains a word
    .venv/bin/python bench/mutants.py --list

Each mutant edits one exact snippet of the working tree and always restores it (also on
Ctrl-C). A mutant that survives names a decision no test pins down.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    select: str | None = None  # pytest -k expression, to run only the relevant tests


EVALUATE = ("tests/test_step_evaluate.py",)
DRIFT = ("tests/test_drift.py",)
DRIFT_EDGES = "threshold or min_records or overall or july or insufficient"
PREPROCESS = ("tests/test_step_preprocess.py",)
GATE = ("tests/test_retrain_gate.py",)
ROLLBACK = ("tests/test_rollback.py",)
CONFIG = ("tests/test_config.py", "tests/test_config_limits.py")
MANIFEST = ("tests/test_release_manifest.py",)
EXPRESSIONS = ("tests/test_local_expressions.py",)
GUARDRAILS = ("tests/test_endpoint_guardrails.py", "tests/test_serving_stack.py")
PROMOTE = ("tests/test_promote.py",)

MUTANTS = [
    # evaluate: the quality gate
    Mutant("evaluate: lower end exactly at -margin fails", "pipeline_steps/evaluate.py",
           "non_inferior = int(lower >= -margin)", "non_inferior = int(lower > -margin)", EVALUATE),
    Mutant("evaluate: margin ignored", "pipeline_steps/evaluate.py",
           "non_inferior = int(lower >= -margin)", "non_inferior = int(lower >= 0)", EVALUATE),
    Mutant("evaluate: gate on the upper end", "pipeline_steps/evaluate.py",
           "non_inferior = int(lower >= -margin)", "non_inferior = int(upper >= -margin)", EVALUATE),
    Mutant("evaluate: 90% interval", "pipeline_steps/evaluate.py",
           "tail = (1 - CONFIDENCE) / 2 * 100", "tail = (1 - CONFIDENCE) * 100", EVALUATE),
    Mutant("evaluate: threshold exclusive", "pipeline_steps/evaluate.py",
           "predicted = (scores >= threshold)", "predicted = (scores > threshold)", EVALUATE),
    # drift verdicts
    Mutant("drift: numeric psi exclusive", "pipeline_steps/drift_scoring.py",
           "drifted = psi >= thresholds.psi or ks >= thresholds.distance",
           "drifted = psi > thresholds.psi or ks >= thresholds.distance", DRIFT, DRIFT_EDGES),
    Mutant("drift: numeric distance exclusive", "pipeline_steps/drift_scoring.py",
           "drifted = psi >= thresholds.psi or ks >= thresholds.distance",
           "drifted = psi >= thresholds.psi or ks > thresholds.distance", DRIFT, DRIFT_EDGES),
    Mutant("drift: categorical needs both metrics", "pipeline_steps/drift_scoring.py",
           "drifted = psi >= thresholds.psi or linf >= thresholds.distance",
           "drifted = psi >= thresholds.psi and linf >= thresholds.distance", DRIFT, DRIFT_EDGES),
    Mutant("drift: min_records exclusive", "pipeline_steps/drift_scoring.py",
           "if present < thresholds.min_records or stats[\"count\"] < thresholds.min_records:\n"
           "        return {\n            **result,\n            \"status\": \"insufficient_data\",\n"
           "            \"psi\": None,\n            \"ks\": None,",
           "if present <= thresholds.min_records or stats[\"count\"] < thresholds.min_records:\n"
           "        return {\n            **result,\n            \"status\": \"insufficient_data\",\n"
           "            \"psi\": None,\n            \"ks\": None,", DRIFT, DRIFT_EDGES),
    Mutant("drift: baseline count ignored", "pipeline_steps/drift_scoring.py",
           "if present < thresholds.min_records or stats[\"count\"] < thresholds.min_records:\n"
           "        return {\n            **result,\n            \"status\": \"insufficient_data\",\n"
           "            \"psi\": None,\n            \"l_infinity\": None,",
           "if present < thresholds.min_records:\n"
           "        return {\n            **result,\n            \"status\": \"insufficient_data\",\n"
           "            \"psi\": None,\n            \"l_infinity\": None,", DRIFT, DRIFT_EDGES),
    Mutant("drift: ignored features still alarm", "pipeline_steps/drift_scoring.py",
           'features[name]["status"] = "ignored"', "pass", DRIFT, DRIFT_EDGES),
    # preprocess
    Mutant("preprocess: train end exclusive", "pipeline_steps/preprocess.py",
           '"train": (day >= start) & (day <= dates.train_end),',
           '"train": (day >= start) & (day < dates.train_end),', PREPROCESS),
    Mutant("preprocess: test starts on validation end", "pipeline_steps/preprocess.py",
           '"test": (day > dates.validation_end)', '"test": (day >= dates.validation_end)',
           PREPROCESS),
    Mutant("preprocess: vocabulary from all rows", "pipeline_steps/preprocess.py",
           'vocabulary = build_vocabulary(parts["train"])', "vocabulary = build_vocabulary(frame)",
           PREPROCESS),
    Mutant("preprocess: equal split dates allowed", "pipeline_steps/preprocess.py",
           "if not self.train_end < self.validation_end < self.test_end:",
           "if not self.train_end <= self.validation_end <= self.test_end:", PREPROCESS),
    # retrain gate
    Mutant("gate: window boundary inclusive", "lambda/retrain_gate/gate_logic.py",
           "if age < timedelta(hours=min_hours):", "if age <= timedelta(hours=min_hours):", GATE),
    Mutant("gate: first listed execution judged", "lambda/retrain_gate/gate_logic.py",
           "return max(executions, key=lambda e: started_at(e, now)) if executions else None",
           "return executions[-1] if executions else None", GATE),
    Mutant("gate: zero hours accepted", "lambda/retrain_gate/gate_logic.py",
           "if min_hours < 1:", "if min_hours < 0:", GATE),
    Mutant("gate: pipeline client in the Lambda's region", "lambda/retrain_gate/handler.py",
           'region_name=config.pipeline_region, config=BOTO_CONFIG', "config=BOTO_CONFIG", GATE),
    Mutant("gate: handler reads the real clock", "lambda/retrain_gate/handler.py",
           "handle_alarm_event(event, config, sagemaker, clock(), cloudwatch)",
           "handle_alarm_event(event, config, sagemaker, utc_now(), cloudwatch)", GATE),
    Mutant("gate: refusal ignored", "lambda/retrain_gate/gate_logic.py",
           "refused = refusal(newest) if refusal else None", "refused = None", GATE),
    Mutant("gate: any failed step is a refusal", "lambda/retrain_gate/gate_refusal.py",
           'fail = metadata.get("Fail") if isinstance(metadata, Mapping) else None',
           'fail = metadata if isinstance(metadata, Mapping) else None', GATE),
    Mutant("gate: a lapsed refusal still holds", "lambda/retrain_gate/gate_logic.py",
           "if refused is not None and refused.lapsed is None:", "if refused is not None:",
           GATE),
    Mutant("gate: the gate's own window date not read as latest",
           "lambda/retrain_gate/gate_refusal.py",
           "return started is not None and window >= started",
           "return started is not None and window > started", GATE),
    Mutant("gate: pipeline version ignored", "lambda/retrain_gate/gate_refusal.py",
           "if run_version != current_version:", "if False:", GATE),
    Mutant("gate: incumbent ignored", "lambda/retrain_gate/gate_refusal.py",
           "if judged_against != approved_now:", "if False:", GATE),
    # rollback
    Mutant("rollback: registry client in the Lambda's region", "lambda/rollback/handler.py",
           'registry = _client("sagemaker", package_region(config.current_model_package_arn))',
           'registry = _client("sagemaker")', ROLLBACK),
    Mutant("rollback: busy even when our rollback started", "lambda/rollback/rollback_logic.py",
           "if status in BUSY_STATUSES and not rollback_started:", "if status in BUSY_STATUSES:",
           ROLLBACK),
    Mutant("rollback: one retry fewer", "lambda/rollback/rollback_logic.py",
           "RETRY_MAX_ATTEMPTS = 5", "RETRY_MAX_ATTEMPTS = 4", ROLLBACK),
    Mutant("rollback: alarm prefix matches", "lambda/rollback/rollback_logic.py",
           "if change.alarm_name not in config.alarm_names:",
           "if not any(change.alarm_name.startswith(a) for a in config.alarm_names):", ROLLBACK),
    Mutant("rollback: event without an alarm name crashes", "lambda/rollback/rollback_logic.py",
           'not detail.get("alarmName") or not state.get("value")',
           'not detail.get("alarmName") and not state.get("value")', ROLLBACK, "odd_events"),
    Mutant("rollback: a reason refresh is a new episode", "lambda/rollback/rollback_logic.py",
           'alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")',
           'alarm.get("StateTransitionedTimestamp") and alarm.get("StateUpdatedTimestamp")',
           ROLLBACK, "reason_update"),
    Mutant("rollback: SNS subject past its limit", "lambda/rollback/rollback_logic.py",
           "Subject=subject[:100]", "Subject=subject[:101]", ROLLBACK, "100_characters"),
    Mutant("gate: a decision counted twice", "lambda/retrain_gate/handler.py",
           "name=decision_metric(result), unit=MetricUnit.Count, value=1)",
           "name=decision_metric(result), unit=MetricUnit.Count, value=2)", GATE, "hub_role"),
    Mutant("gate: definition parameter without a name crashes",
           "lambda/retrain_gate/gate_refusal.py",
           'if isinstance(p, Mapping) and "Name" in p', 'if isinstance(p, Mapping) or "Name" in p',
           GATE, "without_a_name"),
    # promote
    Mutant("promote: a Docker Hub namespace stripped", "mlops/promote.py",
           'first == "localhost"', 'first != "localhost"', PROMOTE, "helpers"),
    Mutant("promote: container without an artifact crashes", "mlops/promote.py",
           "if not containers or not containers[0]", "if not containers and not containers[0]",
           PROMOTE, "model_data"),
    # config and manifest
    Mutant("config: canary 1% refused", "mlops/config/parse.py",
           'r.number("canary_percent", int, 1, 50, 10)', 'r.number("canary_percent", int, 2, 50, 10)',
           CONFIG),
    Mutant("config: equal capacities refused", "mlops/config/parse.py",
           "if cfg.min_capacity > cfg.max_capacity:", "if cfg.min_capacity >= cfg.max_capacity:",
           CONFIG),
    # name_problem is the rule; parse.py's _NAME repeats its pattern as the field's format,
    # so a mutant of _NAME alone is equivalent (name_problem still refuses 21 characters).
    Mutant("config: 21-character names", "mlops/config_rules.py",
           'r"[a-z][a-z0-9-]{1,19}", name', 'r"[a-z][a-z0-9-]{1,20}", name',
           (*CONFIG, "tests/test_config_rules.py")),
    Mutant("config: retrain hours cap", "mlops/config/parse.py",
           'r.number("retrain_min_hours", int, 1, 24 * 90)',
           'r.number("retrain_min_hours", int, 1, 24 * 90 - 1)', CONFIG),
    Mutant("config: join minimum 0 allowed", "mlops/config_rules.py",
           "if not 0.0 < value <= 1.0:", "if not 0.0 <= value <= 1.0:", CONFIG),
    Mutant("config: join minimum 1 refused", "mlops/config_rules.py",
           "if not 0.0 < value <= 1.0:", "if not 0.0 < value < 1.0:", CONFIG),
    Mutant("preprocess: plane minimum not passed", "mlops/pipeline_definition/training_pipeline.py",
           '"--min-plane-match",\n            join([params.min_plane_match.ref]),',
           '"--min-plane-match",\n            "0.7",', ("tests/test_pipeline_definition.py",)),
    Mutant("manifest: version 0 allowed", "mlops/release_manifest.py",
           "or version < 1:", "or version < 0:", MANIFEST),
    Mutant("manifest: 63-character sha", "mlops/release_manifest.py",
           '_SHA256 = re.compile(r"^[0-9a-f]{64}$")', '_SHA256 = re.compile(r"^[0-9a-f]{63,64}$")',
           MANIFEST),
    # local runner
    Mutant("expressions: >= is >", "mlops/local/expressions.py",
           "return bool(a >= b)", "return bool(a > b)", EXPRESSIONS),
    Mutant("expressions: Or is And", "mlops/local/expressions.py",
           'return any(evaluate_condition(c, ctx) for c in condition["Conditions"])',
           'return all(evaluate_condition(c, ctx) for c in condition["Conditions"])', EXPRESSIONS),
    Mutant("runner: DependsOn ignored", "mlops/local/runner/plan.py",
           'refs |= set(spec.get("DependsOn", []))', "pass", ("tests/test_local_runner.py",),
           "depends or reference or branch or impossible or skipped"),
    # endpoint guardrails
    Mutant("endpoint: half the requests captured", "mlops/constructs/realtime_endpoint.py",
           "initial_sampling_percentage=100,", "initial_sampling_percentage=50,", GUARDRAILS,
           "captured"),
    Mutant("endpoint: no termination wait", "mlops/constructs/realtime_endpoint.py",
           "termination_wait_s = wait_s  #", "termination_wait_s = 0  #", GUARDRAILS,
           "canary or maximum or linear"),
    Mutant("endpoint: linear shifts rounded down", "mlops/constructs/realtime_endpoint.py",
           "shifts = math.ceil(100 / deployment.linear_step_percent)",
           "shifts = 100 // deployment.linear_step_percent", GUARDRAILS, "linear or maximum"),
    Mutant("endpoint: scaling on max capacity", "mlops/constructs/endpoint_autoscaling.py",
           "target_value=serving.invocations_per_instance_target,",
           "target_value=serving.invocations_per_instance_target * serving.max_capacity,",
           GUARDRAILS, "autoscaling"),
    # entry points
    Mutant("app: bad config exits 1", "app.py",
           'print(f"error: {error}", file=sys.stderr)\n        return 2',
           'print(f"error: {error}", file=sys.stderr)\n        return 1',
           ("tests/test_entry_points.py",), "exits_2"),
    Mutant("nag: findings only printed", "mlops/nag.py",
           "            file=sys.stderr,\n        )\n        return 1",
           "            file=sys.stderr,\n        )\n        return 0",
           ("tests/test_synth.py",), "unacknowledged"),
]  # fmt: skip


def run_mutant(mutant: Mutant) -> tuple[bool, float]:
    path = ROOT / mutant.path
    original = path.read_text()
    count = original.count(mutant.old)
    if count != 1:
        raise SystemExit(
            f"{mutant.name}: expected the snippet once in {mutant.path}, found {count}"
        )
    started = time.perf_counter()
    try:
        path.write_text(original.replace(mutant.old, mutant.new))
        command = [*PYTEST, *mutant.tests]
        if mutant.select:
            command += ["-k", mutant.select]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    finally:
        path.write_text(original)
    # 1 = tests failed (caught); 5 = none selected would be a broken mutant definition
    if result.returncode not in (0, 1):
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise SystemExit(f"{mutant.name}: pytest exited {result.returncode}: {tail}")
    return result.returncode == 1, time.perf_counter() - started


def main(argv: list[str]) -> int:
    if argv[:1] == ["--list"]:
        for mutant in MUTANTS:
            print(f"{mutant.name:50} {mutant.path}")
        return 0
    chosen = [m for m in MUTANTS if not argv or any(w in m.name for w in argv)]
    caught = 0
    survivors = []
    for mutant in chosen:
        killed, seconds = run_mutant(mutant)
        caught += killed
        if not killed:
            survivors.append(mutant.name)
        print(f"{'caught  ' if killed else 'SURVIVED'} {seconds:6.1f} s  {mutant.name}", flush=True)
    print(f"\nmutants caught: {caught}/{len(chosen)}")
    for name in survivors:
        print(f"  survived: {name}")
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
