"""The container contracts SageMaker gives a processing or training script, emulated locally.

Processing: inputs under /opt/ml/processing/..., ContainerEntrypoint + ContainerArguments,
Environment, outputs uploaded from their LocalPath. Training (framework mode, as the
sagemaker-training toolkit does it): /opt/ml/input/config/{hyperparameters,inputdataconfig,
resourceconfig}.json, channels in /opt/ml/input/data/<channel>, SM_* environment variables,
the code from sagemaker_submit_directory extracted to /opt/ml/code and run as
`python <sagemaker_program> --<hp> <value> ...`, /opt/ml/model packaged as model.tar.gz.

Every /opt/ml/... path is re-rooted into a per-step sandbox folder, and S3 URIs map to a
local folder tree: s3://bucket/key -> <s3_root>/bucket/key.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPT_ML = "/opt/ml"
CURRENT_HOST = "algo-1"
_PYTHON = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")


class ContractError(RuntimeError):
    """The step cannot run under the emulated contract (missing input, bad URI ...)."""


# ---------------------------------------------------------------- S3 as a folder tree


def local_path_for_uri(uri: str, s3_root: Path) -> Path:
    """s3://bucket/key -> <s3_root>/bucket/key; file:// URIs and absolute paths as they are
    (the local registry hands out file paths as model URLs)."""
    if uri.startswith("s3://"):
        rest = uri[len("s3://") :]
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ContractError(f"S3 URI {uri!r} has no bucket")
        parts = [p for p in key.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise ContractError(f"S3 URI {uri!r} contains '.' or '..' segments")
        return Path(s3_root, bucket, *parts)
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if uri.startswith("/"):
        return Path(uri)
    raise ContractError(f"cannot map {uri!r} to a local path (expected s3://, file:// or /path)")


def download(uri: str, dest: Path, s3_root: Path) -> None:
    """Copy an S3 prefix (folder) into dest, or a single object into dest/<name>."""
    source = local_path_for_uri(uri, s3_root)
    dest.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copy2(source, dest / source.name)
    elif source.is_dir() and any(source.iterdir()):
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        raise ContractError(f"no S3 objects found under {uri} (local {source})")


def upload(source: Path, uri: str, s3_root: Path) -> None:
    """Copy a folder's contents to an S3 prefix (SageMaker uploads nothing for an empty one)."""
    target = local_path_for_uri(uri, s3_root)
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)


def put_file(source: Path, uri: str, s3_root: Path) -> Path:
    target = local_path_for_uri(uri, s3_root)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def join_uri(*parts: str) -> str:
    head, *rest = parts
    return "/".join([head.rstrip("/"), *(p.strip("/") for p in rest)])


# ---------------------------------------------------------------- re-rooting


def reroot(value: str, sandbox: Path) -> str:
    """/opt/ml/x -> <sandbox>/opt/ml/x; anything else unchanged."""
    if value == OPT_ML or value.startswith(OPT_ML + "/"):
        return str(sandbox) + value
    return value


def sandbox_path(container_path: str, sandbox: Path) -> Path:
    if not (container_path == OPT_ML or container_path.startswith(OPT_ML + "/")):
        raise ContractError(f"container path {container_path!r} is not under {OPT_ML}/")
    return Path(reroot(container_path, sandbox))


def container_command(
    entrypoint: Sequence[Any], arguments: Sequence[Any], sandbox: Path
) -> list[str]:
    """Entrypoint + arguments as a local command: a leading python is this interpreter."""
    command = [reroot(str(part), sandbox) for part in [*entrypoint, *arguments]]
    if not entrypoint:
        raise ContractError(
            "AppSpecification has no ContainerEntrypoint; the local runner needs an explicit "
            "python entrypoint (the image's default command cannot be emulated)"
        )
    if _PYTHON.match(command[0]):
        command[0] = sys.executable
    return command


def base_environment(region: str) -> dict[str, str]:
    """The host environment minus what would leak the repo or credentials into a step."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        and not k.startswith(("AWS_", "SM_", "PYTEST"))
    }
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


# ---------------------------------------------------------------- running a script


@dataclass(frozen=True)
class ScriptResult:
    returncode: int
    seconds: float
    stdout: Path
    stderr: Path
    timed_out: bool = False


def run_script(
    command: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_dir: Path,
    timeout: float | None = None,
) -> ScriptResult:
    """Run one step's process; stdout and stderr go to files (no pipes to fill up)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = log_dir / "stdout.log", log_dir / "stderr.log"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                command, cwd=cwd, env=dict(env), stdout=out, stderr=err, timeout=timeout
            )
            code, timed_out = proc.returncode, False
        except subprocess.TimeoutExpired:
            code, timed_out = -9, True
        seconds = time.perf_counter() - started
    return ScriptResult(code, seconds, stdout_path, stderr_path, timed_out)


def failure_reason(result: ScriptResult, failure_file: Path | None = None) -> str:
    """The `ERROR: ...` line a script printed, else SageMaker's failure file, else the last
    stderr line, else the exit code."""
    if result.timed_out:
        return "the step exceeded its StoppingCondition.MaxRuntimeInSeconds and was stopped"
    lines = [
        line.strip()
        for line in result.stderr.read_text(errors="replace").splitlines()
        if line.strip()
    ]
    errors = [line for line in lines if line.startswith("ERROR:")]
    if errors:
        return errors[-1][len("ERROR:") :].strip()
    if failure_file is not None and failure_file.is_file():
        text = failure_file.read_text(errors="replace").strip()
        if text:
            return text.splitlines()[0]
    if lines:
        return lines[-1]
    return f"the script exited with code {result.returncode} and printed nothing on stderr"


# ---------------------------------------------------------------- archives


def package_dir(source: Path, tar_path: Path) -> None:
    """A deterministic tar.gz of a folder's contents (sorted, no owners, fixed mtime)."""
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(source.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(source)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            elif path.is_dir():
                tar.addfile(info)
    with tar_path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())


def extract_tar(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ContractError(f"cannot extract {archive.name}: {exc}") from exc


# ---------------------------------------------------------------- processing


def write_processing_config(sandbox: Path, job_name: str, arguments: Mapping[str, Any]) -> None:
    """/opt/ml/config/{processingjobconfig,resourceconfig}.json as in a processing container."""
    config = sandbox / "opt/ml/config"
    config.mkdir(parents=True, exist_ok=True)
    job = {"ProcessingJobName": job_name, **arguments}
    (config / "processingjobconfig.json").write_text(json.dumps(job, indent=2, default=str))
    (config / "resourceconfig.json").write_text(
        json.dumps({"current_host": CURRENT_HOST, "hosts": [CURRENT_HOST]})
    )


# ---------------------------------------------------------------- training (toolkit)


def decode_hyperparameters(raw: Mapping[str, str]) -> dict[str, Any]:
    """What the toolkit does with hyperparameters.json: JSON-decode each value if it can."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def user_hyperparameters(decoded: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}


def to_cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """The toolkit's mapping.to_cmd_args: sorted keys, --key value (-k for one letter),
    dicts as k=v,k2=v2, everything else str()."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def env_value(value: Any) -> str:
    """The toolkit's mapping.to_env_vars value format."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class TrainingLayout:
    """The container paths of one training job, re-rooted into its sandbox."""

    sandbox: Path

    def path(self, container_path: str) -> Path:
        return sandbox_path(container_path, self.sandbox)

    @property
    def config_dir(self) -> Path:
        return self.path("/opt/ml/input/config")

    @property
    def code_dir(self) -> Path:
        return self.path("/opt/ml/code")

    @property
    def model_dir(self) -> Path:
        return self.path("/opt/ml/model")

    @property
    def output_dir(self) -> Path:
        return self.path("/opt/ml/output")

    @property
    def output_data_dir(self) -> Path:
        return self.path("/opt/ml/output/data")

    def channel_dir(self, channel: str) -> Path:
        return self.path(f"/opt/ml/input/data/{channel}")


def write_training_config(
    layout: TrainingLayout,
    *,
    hyperparameters: Mapping[str, str],
    channels: Sequence[Mapping[str, Any]],
    instance_type: str,
) -> None:
    layout.config_dir.mkdir(parents=True, exist_ok=True)
    input_config = {
        ch["ChannelName"]: {
            "TrainingInputMode": ch.get("InputMode", "File"),
            "S3DistributionType": ch.get("DataSource", {})
            .get("S3DataSource", {})
            .get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": ch.get("RecordWrapperType", "None"),
            **({"ContentType": ch["ContentType"]} if "ContentType" in ch else {}),
        }
        for ch in channels
    }
    resource = {
        "current_host": CURRENT_HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [CURRENT_HOST],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": instance_type,
                "hosts": [CURRENT_HOST],
            }
        ],
        "network_interface_name": "eth0",
    }
    for name, data in (
        ("hyperparameters.json", dict(hyperparameters)),
        ("inputdataconfig.json", input_config),
        ("resourceconfig.json", resource),
    ):
        (layout.config_dir / name).write_text(json.dumps(data, indent=2, sort_keys=True))


def training_environment(
    layout: TrainingLayout,
    *,
    job_name: str,
    hyperparameters: Mapping[str, Any],
    channels: Sequence[str],
    program: str,
    submit_dir_uri: str,
    instance_type: str,
    checkpoint_dir: Path | None,
) -> dict[str, str]:
    """The SM_* variables the sagemaker-training toolkit gives the user script."""
    user_hps = user_hyperparameters(hyperparameters)
    env = {
        "SM_MODEL_DIR": str(layout.model_dir),
        "SM_OUTPUT_DIR": str(layout.output_dir),
        "SM_OUTPUT_DATA_DIR": str(layout.output_data_dir),
        "SM_INPUT_DIR": str(layout.path("/opt/ml/input")),
        "SM_INPUT_CONFIG_DIR": str(layout.config_dir),
        "SM_CHANNELS": env_value(sorted(channels)),
        "SM_HPS": env_value(user_hps),
        "SM_USER_ARGS": env_value(to_cmd_args(user_hps)),
        "SM_CURRENT_HOST": CURRENT_HOST,
        "SM_HOSTS": env_value([CURRENT_HOST]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_CURRENT_INSTANCE_TYPE": instance_type,
        "SM_NETWORK_INTERFACE_NAME": "eth0",
        "SM_MODULE_NAME": Path(program).stem,
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_DIR": submit_dir_uri,
        "SM_LOG_LEVEL": "20",
        "TRAINING_JOB_NAME": job_name,
        "SM_TRAINING_ENV": env_value(
            {
                "job_name": job_name,
                "hyperparameters": user_hps,
                "channel_input_dirs": {c: str(layout.channel_dir(c)) for c in channels},
                "model_dir": str(layout.model_dir),
                "output_data_dir": str(layout.output_data_dir),
                "current_host": CURRENT_HOST,
                "hosts": [CURRENT_HOST],
                "user_entry_point": program,
            }
        ),
    }
    for channel in channels:
        env[f"SM_CHANNEL_{channel.upper()}"] = str(layout.channel_dir(channel))
    for key, value in user_hps.items():
        env[f"SM_HP_{key.upper()}"] = env_value(value)
    if checkpoint_dir is not None:
        env["SM_CHECKPOINT_DIR"] = str(checkpoint_dir)
    return env
