"""Processing steps: S3 and Athena dataset inputs, the script, outputs and property files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.local import athena, contract
from mlops.local.expressions import PropertyFile, to_pipeline_string
from mlops.local.runner.plan import StepNode
from mlops.local.runner.records import StepFailure, StepResult
from mlops.local.runner.state import RunState, require_uri, script_failure, step_arguments


def run_processing(node: StepNode, run: RunState, result: StepResult) -> None:
    args = step_arguments(node, run)
    sandbox = run.sandbox(node.name)
    job_name = run.job_name(node.name)
    for item in args.get("ProcessingInputs", []):
        if "DatasetDefinition" in item:
            _dataset_input(item, run, sandbox, job_name)
            continue
        if "S3Input" not in item:
            raise StepFailure(
                f"input {item.get('InputName')} is neither an S3Input nor a DatasetDefinition"
            )
        s3 = item["S3Input"]
        if s3.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailure(
                f"input {item.get('InputName')}: only S3DataType S3Prefix is emulated"
            )
        local = contract.sandbox_path(s3["LocalPath"], sandbox)
        contract.download(
            require_uri(s3.get("S3Uri"), f"input {item.get('InputName')}"), local, run.s3_root
        )
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        if "S3Output" not in item:
            raise StepFailure(f"output {item.get('OutputName')}: only S3 outputs can be emulated")
        contract.sandbox_path(item["S3Output"]["LocalPath"], sandbox).mkdir(
            parents=True, exist_ok=True
        )
    contract.write_processing_config(sandbox, job_name, args)
    app = args.get("AppSpecification", {})
    command = contract.container_command(
        app.get("ContainerEntrypoint", []), app.get("ContainerArguments", []), sandbox
    )
    env = contract.base_environment(run.region)
    env.update(
        {
            k: contract.reroot(to_pipeline_string(v), sandbox)
            for k, v in args.get("Environment", {}).items()
        }
    )
    timeout = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
    script = contract.run_script(
        command, cwd=sandbox, env=env, log_dir=sandbox / "logs", timeout=timeout
    )
    result.script_seconds = script.seconds
    if script.returncode != 0:
        raise StepFailure(script_failure(script, sandbox / "opt/ml/output/message"))
    for item in outputs:
        s3 = item["S3Output"]
        local = contract.sandbox_path(s3["LocalPath"], sandbox)
        contract.upload(
            local, require_uri(s3.get("S3Uri"), f"output {item.get('OutputName')}"), run.s3_root
        )
    run.ctx.property_files[node.name] = _load_property_files(node, outputs, sandbox)
    run.ctx.steps[node.name] = {
        **args,
        "ProcessingJobName": job_name,
        "ProcessingJobArn": run.arn("processing-job", job_name),
        "ProcessingJobStatus": "Completed",
        "ExitMessage": "",
    }


def _dataset_input(item: Mapping[str, Any], run: RunState, sandbox: Path, job_name: str) -> None:
    """An Athena dataset definition: the query runs in the local Athena (DuckDB over the local
    catalog), its result lands under OutputS3Uri, and the job gets it at LocalPath, as
    SageMaker runs it before the job starts."""
    name = item.get("InputName")
    dataset = item["DatasetDefinition"]
    query = dataset.get("AthenaDatasetDefinition")
    if query is None:
        raise StepFailure(f"input {name}: only Athena dataset definitions can be emulated")
    if run.catalog is None:
        raise StepFailure(
            f"input {name} queries Athena, but this run has no local Glue catalog "
            "(`mlops local run` builds it from the assembly and the local feature store)"
        )
    output_uri = require_uri(query.get("OutputS3Uri"), f"input {name} OutputS3Uri")
    try:
        athena.write_result(
            run.catalog,
            str(query.get("Catalog", "")),
            str(query.get("Database", "")),
            str(query.get("QueryString", "")),
            contract.local_path_for_uri(output_uri, run.s3_root),
            output_format=str(query.get("OutputFormat", "")),
            compression=query.get("OutputCompression"),
            file_stem=f"{job_name}-{name}",
        )
    except athena.AthenaQueryError as error:
        raise StepFailure(f"input {name}: {error}") from None
    local = contract.sandbox_path(
        require_uri(dataset.get("LocalPath"), f"input {name} LocalPath"), sandbox
    )
    contract.download(output_uri, local, run.s3_root)


def _load_property_files(
    node: StepNode, outputs: list[dict[str, Any]], sandbox: Path
) -> dict[str, PropertyFile]:
    local_by_output = {
        o.get("OutputName"): contract.sandbox_path(o["S3Output"]["LocalPath"], sandbox)
        for o in outputs
    }
    loaded: dict[str, PropertyFile] = {}
    for spec in node.spec.get("PropertyFiles", []):
        name, output, file_path = spec["PropertyFileName"], spec["OutputName"], spec["FilePath"]
        folder = local_by_output.get(output)
        if folder is None:
            loaded[name] = PropertyFile(error=f"the step has no output named {output!r}")
            continue
        path = folder / file_path
        try:
            loaded[name] = PropertyFile(data=json.loads(path.read_text()))
        except FileNotFoundError:
            loaded[name] = PropertyFile(error=f"{file_path} was not written to output {output!r}")
        except ValueError as exc:
            loaded[name] = PropertyFile(error=f"{file_path} is not valid JSON: {exc}")
    return loaded
