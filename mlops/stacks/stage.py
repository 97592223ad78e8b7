"""One deployable unit per (environment, region): composes the stacks of that place."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlops.config import EnvironmentConfig, PlatformConfig
from mlops.stacks.data_stack import DataStack
from mlops.stacks.training_stack import TrainingStack


def stage_id(environment: EnvironmentConfig, region: str) -> str:
    return f"{environment.name}-{region}"


class PlatformStage(cdk.Stage):
    """Self-contained: nothing here references another region or account."""

    def __init__(
        self,
        scope: Construct,
        *,
        platform: PlatformConfig,
        environment: EnvironmentConfig,
        region: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            stage_id(environment, region),
            env=cdk.Environment(account=environment.account, region=region),
            **kwargs,
        )
        self.data = DataStack(
            self, "Data", platform=platform, environment=environment, region=region
        )
        self.training: TrainingStack | None = None
        if environment.training is not None and region == environment.home_region:
            self.training = TrainingStack(
                self, "Training", platform=platform, environment=environment, data=self.data
            )
        for key, value in (
            ("project", platform.project),
            ("environment", environment.name),
            ("cost-centre", platform.cost_centre),
        ):
            cdk.Tags.of(self).add(key, value)
