"""What configuration may name: the regions, instance types and sizes, serverless memory
sizes and drift alarm metrics the platform supports, and the ISO 8601 duration pattern.
The checks of values against what the services accept live in mlops/config_rules.py."""

from __future__ import annotations

import re

# Commercial regions where SageMaker real-time inference and pipelines are available and our
# image table (mlops/pipeline_definition/images.py) has entries.
KNOWN_REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "sa-east-1",
)

# SageMaker instance families (CPU and GPU) we allow; the size part is checked separately.
KNOWN_INSTANCE_FAMILIES: tuple[str, ...] = (
    "t2", "t3", "m4", "m5", "m5d", "m6i", "m6id", "m7i", "c4", "c5", "c5d", "c6i", "c6id",
    "c7i", "r5", "r5d", "r6i", "r6id", "r7i", "g4dn", "g5", "g6", "p3", "p4d", "inf1", "inf2",
)  # fmt: skip

# vCPUs per instance size: alarm thresholds on CPUUtilization scale with it (100% per core).
VCPUS_BY_SIZE: dict[str, int] = {
    "medium": 2,
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "9xlarge": 36,
    "12xlarge": 48,
    "16xlarge": 64,
    "18xlarge": 72,
    "24xlarge": 96,
}

# Families with NVMe instance storage: SageMaker rejects a KMS volume key for them.
INSTANCE_STORE_FAMILIES: frozenset[str] = frozenset(
    {"m5d", "m6id", "c5d", "c6id", "r5d", "r6id", "g4dn", "g5", "g6", "p4d"}
)

SERVERLESS_MEMORY_MB: tuple[int, ...] = (1024, 2048, 3072, 4096, 5120, 6144)

FROM_CLI = "from-cli"
ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")


# What the drift alarm may watch (published by pipeline_steps/drift.py and model_quality.py)
# and the comparison that means "bad" for each.
DRIFT_ALARM_METRICS: dict[str, str] = {
    "DriftScore": "GreaterThanOrEqualToThreshold",  # highest feature PSI of the window
    "DriftedFeatureCount": "GreaterThanOrEqualToThreshold",
    "OutOfRangeShare": "GreaterThanOrEqualToThreshold",  # see drift.py
    "ModelAUC": "LessThanThreshold",  # ground truth, where labels arrive
}
