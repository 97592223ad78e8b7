"""Which model version the endpoint serves now, for the answer's model_version.

The release manifest pins a version per stage, but the endpoint can serve another one: an
automatic rollback (the deployment guardrails', or the rollback Lambda's UpdateEndpoint) puts
the previous endpoint config back. InvokeEndpoint's InvokedProductionVariant names only the
variant, and the variant name is the same in every config (retained across releases), so it
cannot tell them apart; DescribeEndpoint's EndpointConfigName can: the stack gives the API
both configs' names with their versions (ENDPOINT_CONFIG_VERSIONS, JSON). Asked at most once
per ttl_s per container; when DescribeEndpoint fails, the last answer (else the release) is
used rather than failing the prediction, and the failure is remembered for ttl_s too, so a
throttled DescribeEndpoint is not called again by every request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class ServedVersion:
    def __init__(
        self,
        client: Any,
        endpoint_name: str,
        config_versions: Mapping[str, str],
        release_version: str,
        *,
        ttl_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.client, self.endpoint_name = client, endpoint_name
        self.config_versions = dict(config_versions)
        self.release_version = release_version
        self.ttl_s, self.clock = ttl_s, clock
        self._version: str | None = None
        self._at: float | None = None  # when DescribeEndpoint was last asked

    @classmethod
    def from_environment(
        cls, client: Any, env: Mapping[str, str], *, ttl_s: float, clock: Callable[[], float]
    ) -> ServedVersion:
        versions = json.loads(env.get("ENDPOINT_CONFIG_VERSIONS") or "{}")
        return cls(
            client,
            env["ENDPOINT_NAME"],
            {str(k): str(v) for k, v in versions.items()},
            env["MODEL_VERSION"],
            ttl_s=ttl_s,
            clock=clock,
        )

    def get(self) -> str:
        now = self.clock()
        if self._at is not None and now - self._at < self.ttl_s:
            return self._version or self.release_version
        self._at = now
        try:
            config = self.client.describe_endpoint(EndpointName=self.endpoint_name)
        except (ClientError, BotoCoreError):
            return self._version or self.release_version
        name = str(config.get("EndpointConfigName", ""))
        # A config we were not told about (a deployment in flight): the release's version.
        self._version = self.config_versions.get(name, self.release_version)
        return self._version
