"""The pipeline parameters (ParameterType, default from the spec) that executions may override."""

from __future__ import annotations

from dataclasses import dataclass

from mlops.pipeline_definition.contract import WINDOW_END_LATEST
from mlops.pipeline_definition.expressions import Parameter, ParameterType
from mlops.pipeline_definition.spec import TrainingPipelineSpec


@dataclass(frozen=True)
class PipelineParameters:
    input_data_url: Parameter
    processing_instance_type: Parameter
    processing_instance_count: Parameter
    training_instance_type: Parameter
    auc_threshold: Parameter
    model_approval_status: Parameter
    window_end: Parameter
    test_weeks: Parameter
    validation_weeks: Parameter
    train_months: Parameter
    train_end: Parameter
    validation_end: Parameter
    test_end: Parameter
    non_inferiority_margin: Parameter
    min_weather_match: Parameter
    min_plane_match: Parameter

    def all(self) -> list[Parameter]:
        return [
            self.input_data_url,
            self.processing_instance_type,
            self.processing_instance_count,
            self.training_instance_type,
            self.auc_threshold,
            self.model_approval_status,
            self.window_end,
            self.test_weeks,
            self.validation_weeks,
            self.train_months,
            self.train_end,
            self.validation_end,
            self.test_end,
            self.non_inferiority_margin,
            self.min_weather_match,
            self.min_plane_match,
        ]


def pipeline_parameters(spec: TrainingPipelineSpec) -> PipelineParameters:
    s, i, f = ParameterType.STRING, ParameterType.INTEGER, ParameterType.FLOAT
    return PipelineParameters(
        input_data_url=Parameter("InputDataUrl", s, _input_data_url(spec)),
        processing_instance_type=Parameter(
            "ProcessingInstanceType", s, spec.processing_instance_type
        ),
        processing_instance_count=Parameter(
            "ProcessingInstanceCount", i, spec.processing_instance_count
        ),
        training_instance_type=Parameter("TrainingInstanceType", s, spec.training_instance_type),
        auc_threshold=Parameter("AucThreshold", f, float(spec.auc_threshold)),
        model_approval_status=Parameter("ModelApprovalStatus", s, spec.approval_status),
        window_end=Parameter("WindowEnd", s, WINDOW_END_LATEST),
        test_weeks=Parameter("TestWeeks", i, spec.test_weeks),
        validation_weeks=Parameter("ValidationWeeks", i, spec.validation_weeks),
        train_months=Parameter("TrainMonths", i, spec.train_months),
        # Empty: resolved from the data. Pipeline parameters cannot be absent, only empty.
        train_end=Parameter("TrainEnd", s, ""),
        validation_end=Parameter("ValidationEnd", s, ""),
        test_end=Parameter("TestEnd", s, ""),
        non_inferiority_margin=Parameter(
            "NonInferiorityMargin", f, float(spec.non_inferiority_margin)
        ),
        min_weather_match=Parameter("MinWeatherMatch", f, float(spec.min_weather_match)),
        min_plane_match=Parameter("MinPlaneMatch", f, float(spec.min_plane_match)),
    )


def _input_data_url(spec: TrainingPipelineSpec) -> str:
    return spec.input_data_url or f"s3://{spec.artifact_bucket}/raw/"
