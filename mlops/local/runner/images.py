"""What can be emulated (step types, framework images, script-mode training), checked before anything runs."""

from __future__ import annotations

import re

from mlops.local.expressions import EvalContext, ExpressionError, evaluate, to_pipeline_string
from mlops.local.runner.plan import StepNode

EMULATED_REPOSITORIES = ("sagemaker-scikit-learn", "sagemaker-xgboost")


_IMAGE = re.compile(
    r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+)(?::(?P<tag>[A-Za-z0-9._-]+)|@sha256:[0-9a-f]{64})?$"
)


SUPPORTED_TYPES = (
    "Processing",
    "Training",
    "Tuning",
    "Lambda",
    "Condition",
    "RegisterModel",
    "Fail",
)


def _step_images(node: StepNode, ctx: EvalContext) -> list[str]:
    args = node.spec.get("Arguments", {})
    if node.type == "Processing":
        specs = [args.get("AppSpecification", {}).get("ImageUri")]
    elif node.type == "Training":
        specs = [args.get("AlgorithmSpecification", {}).get("TrainingImage")]
    elif node.type == "Tuning":
        definitions = args.get("TrainingJobDefinitions") or [args.get("TrainingJobDefinition", {})]
        specs = [d.get("AlgorithmSpecification", {}).get("TrainingImage") for d in definitions]
    else:
        return []
    images = []
    for spec in specs:
        try:
            images.append(to_pipeline_string(evaluate(spec, ctx)) if spec else "")
        except ExpressionError:
            images.append(str(spec))
    return images


def image_refusal(step: str, image: str) -> str | None:
    """None if the image can be emulated, else the one-line reason."""
    match = _IMAGE.match(image)
    if match and match.group("repository") in EMULATED_REPOSITORIES:
        return None
    allowed = " or ".join(f"{r} images" for r in EMULATED_REPOSITORIES)
    shown = image or "(no image; algorithm resources cannot be emulated)"
    return f"step {step} uses image {shown}; the local runner can only emulate {allowed}"


def preflight(nodes: list[StepNode], ctx: EvalContext) -> str | None:
    """The first reason the run cannot start, or None."""
    for node in nodes:
        if node.type not in SUPPORTED_TYPES:
            return (
                f"step {node.name} has type {node.type}; the local runner supports "
                f"{', '.join(SUPPORTED_TYPES)}"
            )
        for image in _step_images(node, ctx):
            refusal = image_refusal(node.name, image)
            if refusal:
                return refusal
        if node.type in ("Training", "Tuning"):
            args = node.spec.get("Arguments", {})
            definitions = (
                [args]
                if node.type == "Training"
                else args.get("TrainingJobDefinitions") or [args.get("TrainingJobDefinition", {})]
            )
            for d in definitions:
                hps = {**d.get("HyperParameters", {}), **d.get("StaticHyperParameters", {})}
                if "sagemaker_program" not in hps or "sagemaker_submit_directory" not in hps:
                    return (
                        f"step {node.name} trains without sagemaker_program and "
                        "sagemaker_submit_directory hyperparameters; the local runner emulates "
                        "framework (script) mode only, not the built-in algorithm"
                    )
    return None
