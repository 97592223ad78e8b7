"""The model a local server serves: a registry package's artifact, unpacked, scored through
the inference.py it carries (model_fn, input_fn, predict_fn, output_fn: the container's path),
started with the environment the serving stack gives its container (MODEL_VERSION: the
package's version), so its answers name their version as the endpoint's do.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlops.local.registry import LocalRegistry, ModelPackage, RegistryError

CODE_DIR = "code"
ENTRY_POINT = "inference.py"
# What mlops/constructs/realtime_endpoint.py sets on every model's container.
MODEL_VERSION_ENV = "MODEL_VERSION"


@dataclass
class ServedModel:
    package: ModelPackage
    module: ModuleType
    model: Any

    @property
    def version(self) -> str:
        return str(self.package.version)

    def invoke(self, csv_body: str) -> str:
        """What InvokeEndpoint returns for this text/csv body."""
        rows = self.module.input_fn(csv_body, "text/csv")
        body, _content_type = self.module.output_fn(
            self.module.predict_fn(rows, self.model), "text/csv"
        )
        return str(body)


def choose_package(registry: LocalRegistry, group: str | None, version: int | None) -> ModelPackage:
    """The given version, or the newest Approved package (what FindIncumbent calls the
    incumbent): of `group`, or of every group in the registry."""
    groups = [group] if group else registry.groups()
    if version is not None:
        if len(groups) != 1:
            raise RegistryError(f"--version needs --group: the registry has {', '.join(groups)}")
        return registry.get(groups[0], version)
    approved = [p for g in groups for p in registry.list_packages(g, "Approved")]
    if not approved:
        raise RegistryError(
            f"no Approved model in {registry.root}: run `make local-run` (or `mlops local run`) "
            "first, or pass --group and --version"
        )
    return max(approved, key=lambda p: (p.created_at, p.version))


def _load_module(path: Path) -> ModuleType:
    name = f"served_inference_{abs(hash(path))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def start_model(module: ModuleType, model_dir: Path, version: int | str) -> Any:
    """model_fn as the container runs it: with MODEL_VERSION in the environment (set only
    for the call, as each model here shares one process with others)."""
    before = os.environ.get(MODEL_VERSION_ENV)
    os.environ[MODEL_VERSION_ENV] = str(version)
    try:
        return module.model_fn(str(model_dir))
    finally:
        if before is None:
            os.environ.pop(MODEL_VERSION_ENV, None)
        else:
            os.environ[MODEL_VERSION_ENV] = before


def load_served_model(package: ModelPackage, work_dir: Path | None = None) -> ServedModel:
    folder = Path(work_dir or tempfile.mkdtemp(prefix=f"serve-v{package.version}-"))
    with tarfile.open(package.model_data_path) as archive:
        archive.extractall(folder, filter="data")
    entry = folder / CODE_DIR / ENTRY_POINT
    if not entry.is_file():
        raise RegistryError(f"{package.model_data_path} has no {CODE_DIR}/{ENTRY_POINT}")
    module = _load_module(entry)
    model = start_model(module, folder, package.version)
    return ServedModel(package=package, module=module, model=model)
