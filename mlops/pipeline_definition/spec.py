"""TrainingPipelineSpec and TuningSpec: all the definition depends on, checked on creation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlops.config import (
    DEFAULT_MIN_PLANE_MATCH,
    DEFAULT_MIN_WEATHER_MATCH,
    DEFAULT_NON_INFERIORITY_MARGIN,
    ISO_DURATION,
)
from mlops.pipeline_definition import images
from mlops.pipeline_definition.contract import APPROVAL_STATUSES
from mlops.pipeline_definition.offline_join import OfflineTables


@dataclass(frozen=True, kw_only=True)
class IntegerRange:
    name: str
    min_value: int
    max_value: int
    scaling: str = "Auto"


@dataclass(frozen=True, kw_only=True)
class ContinuousRange:
    name: str
    min_value: float
    max_value: float
    scaling: str = "Auto"


@dataclass(frozen=True, kw_only=True)
class CategoricalRange:
    name: str
    values: tuple[str, ...]


HyperparameterRange = IntegerRange | ContinuousRange | CategoricalRange

DEFAULT_RANGES: tuple[HyperparameterRange, ...] = (
    IntegerRange(name="max_depth", min_value=3, max_value=10),
    ContinuousRange(name="eta", min_value=0.01, max_value=0.3, scaling="Logarithmic"),
    ContinuousRange(name="min_child_weight", min_value=1.0, max_value=10.0),
    ContinuousRange(name="subsample", min_value=0.5, max_value=1.0),
)


@dataclass(frozen=True, kw_only=True)
class TuningSpec:
    """Bayesian tuning that maximises validation:auc over the given ranges."""

    max_jobs: int = 12
    max_parallel_jobs: int = 3
    ranges: tuple[HyperparameterRange, ...] = DEFAULT_RANGES
    strategy: str = "Bayesian"
    early_stopping: str = "Off"

    def __post_init__(self) -> None:
        if not 1 <= self.max_parallel_jobs <= self.max_jobs:
            raise ValueError(
                f"tuning: max_parallel_jobs {self.max_parallel_jobs} must be between 1 and "
                f"max_jobs {self.max_jobs}"
            )
        if not self.ranges:
            raise ValueError("tuning: at least one hyperparameter range is needed")
        names = [r.name for r in self.ranges]
        if len(set(names)) != len(names):
            raise ValueError(f"tuning: hyperparameter ranges repeat a name: {names}")
        for r in self.ranges:
            if isinstance(r, CategoricalRange):
                if not r.values:
                    raise ValueError(f"tuning: categorical range {r.name} has no values")
            elif not r.min_value < r.max_value:
                raise ValueError(
                    f"tuning: range {r.name} needs min_value < max_value, "
                    f"got {r.min_value}..{r.max_value}"
                )


@dataclass(frozen=True, kw_only=True)
class TrainingPipelineSpec:
    """Everything the definition depends on; see build_definition."""

    region: str
    role_arn: str
    artifact_bucket: str
    code_uri: str
    model_package_group_name: str
    find_incumbent_function_arn: str
    # Preprocess's input: the point-in-time join (offline_join.py) run by Athena over these
    # Glue tables, in this workgroup (None: the account's primary workgroup).
    offline_tables: OfflineTables
    athena_workgroup: str | None = None
    s3_prefix: str = "training-pipeline"
    input_data_url: str | None = None  # default s3://<artifact_bucket>/raw/
    processing_instance_type: str = "ml.m5.xlarge"
    processing_instance_count: int = 1
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    processing_volume_gb: int = 30
    training_volume_gb: int = 30
    processing_max_runtime_seconds: int = 3600
    training_max_runtime_seconds: int = 3600
    auc_threshold: float = 0.7
    approval_status: str = "PendingManualApproval"
    use_spot: bool = False
    max_wait_seconds: int = 7200
    checkpoint_prefix: str = "checkpoints"
    tuning: TuningSpec | None = None
    hyperparameters: Mapping[str, str | int | float] = field(default_factory=dict)
    # Rolling window, resolved by Preprocess from the data: test = the last test_weeks up to
    # WindowEnd ("latest" = the newest flown date), validation the validation_weeks before,
    # train the train_months before that. Each is a pipeline parameter; TrainEnd,
    # ValidationEnd and TestEnd (empty by default) pin explicit dates instead.
    test_weeks: int = 4
    validation_weeks: int = 4
    train_months: int = 6
    # The quality gate passes a candidate whose AUC is at most this much below the
    # incumbent's (lower bound of the paired-bootstrap 95% CI of the difference).
    non_inferiority_margin: float = DEFAULT_NON_INFERIORITY_MARGIN
    # Preprocess refuses data where a smaller share of a split's flights found their weather
    # observation or their plane (pipeline parameters MinWeatherMatch, MinPlaneMatch).
    min_weather_match: float = DEFAULT_MIN_WEATHER_MATCH
    min_plane_match: float = DEFAULT_MIN_PLANE_MATCH
    kms_key_arn: str | None = None
    # ISO 8601 duration, or None for no step caching. Caching keys on the input URIs, not
    # on the data behind them: give new data a new InputDataUrl or it is not retrained on.
    cache_expire_after: str | None = "P30D"
    serving_instance_types: tuple[str, ...] = ("ml.m5.large",)
    # Environment of the registered serving container, e.g. SAGEMAKER_PROGRAM and
    # SAGEMAKER_SUBMIT_DIRECTORY for a framework-mode inference script.
    inference_environment: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        images.registry_account(self.region)  # unknown region: fail now, not at deploy
        if self.approval_status not in APPROVAL_STATUSES:
            raise ValueError(
                f"approval_status {self.approval_status!r} is not one of "
                f"{', '.join(APPROVAL_STATUSES)}"
            )
        for name in ("processing_instance_count", "training_instance_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 < self.auc_threshold <= 1.0:
            raise ValueError(f"auc_threshold must be in (0, 1], got {self.auc_threshold}")
        if self.use_spot and self.max_wait_seconds < self.training_max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds {self.max_wait_seconds} must be at least "
                f"training_max_runtime_seconds {self.training_max_runtime_seconds} with spot"
            )
        for name in ("test_weeks", "validation_weeks", "train_months"):
            if not 1 <= getattr(self, name) <= 520:
                raise ValueError(f"{name} must be from 1 to 520, got {getattr(self, name)}")
        if not 0.0 <= self.non_inferiority_margin <= 0.2:
            raise ValueError(
                f"non_inferiority_margin must be from 0 to 0.2, got {self.non_inferiority_margin}"
            )
        for name in ("min_weather_match", "min_plane_match"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.cache_expire_after is not None and not ISO_DURATION.match(self.cache_expire_after):
            raise ValueError(
                f"cache_expire_after {self.cache_expire_after!r} is not an ISO 8601 duration "
                "(e.g. P30D, PT12H)"
            )
        reserved = sorted(k for k in self.hyperparameters if k.startswith("sagemaker_"))
        if reserved:
            raise ValueError(f"hyperparameters may not set reserved names: {reserved}")
        if not self.serving_instance_types:
            raise ValueError("serving_instance_types needs at least one instance type")
