"""Execute a SageMaker pipeline definition on this machine, without Docker.

run_pipeline walks the definition's DAG (Get Steps.X references, DependsOn, and condition
branches: a step inside IfSteps/ElseSteps runs only when its branch is chosen) and runs
each step under the container contract emulated in contract.py: processing and framework
training scripts run as subprocesses of this Python interpreter, in a sandbox under
work_dir/steps/<step>/ where /opt/ml/... lives; S3 is the folder tree s3_root/<bucket>/<key>.
Lambda steps call local functions, RegisterModel writes the LocalRegistry, Fail fails.

Only the SageMaker scikit-learn and XGBoost images can be emulated (the local environment
pins the same library versions); any other image fails the run before anything runs.

The result is a RunSummary, also written to work_dir/run-summary.json. Invalid input to the
runner itself (malformed definition, unknown parameter override) raises LocalRunError;
everything that happens while running (a refused image, a failing script, a Fail step)
ends as a Failed summary with a one-line failure_reason.

Modules: records (StepResult, RunSummary, run-summary.json, LocalRunError), plan (the steps
in dependency order, the parameter values), images (what can be emulated, checked before the
run), state (one run's state and the helpers the step types share), processing, training
(Training and Tuning), control (Lambda, Condition, Fail), register (RegisterModel), execution
(run_pipeline: walks the plan and writes the summary). Import from this package, not the
modules.
"""

from mlops.local.runner.execution import run_pipeline
from mlops.local.runner.images import (
    EMULATED_REPOSITORIES,
    SUPPORTED_TYPES,
    image_refusal,
    preflight,
)
from mlops.local.runner.plan import parse_steps, resolve_parameters
from mlops.local.runner.records import (
    LocalRunError,
    RunSummary,
    StepFailure,
    StepResult,
    write_summary,
)
from mlops.local.runner.register import METRIC_PARTS
from mlops.local.runner.state import LocalLambda, Progress
from mlops.local.runner.training import range_midpoints

__all__ = [
    "EMULATED_REPOSITORIES",
    "METRIC_PARTS",
    "SUPPORTED_TYPES",
    "LocalLambda",
    "LocalRunError",
    "Progress",
    "RunSummary",
    "StepFailure",
    "StepResult",
    "image_refusal",
    "parse_steps",
    "preflight",
    "range_midpoints",
    "resolve_parameters",
    "run_pipeline",
    "write_summary",
]
