"""Pinned SageMaker framework container images, per region.

Account IDs come from the SageMaker Python SDK's image_uri_config (sklearn.json "training"
1.4-2 and xgboost.json 3.0-5, sagemaker-core layout): both frameworks share one registry
account per region. The local environment pins scikit-learn 1.4.2 and xgboost 3.0.5, the
same library versions these containers ship.
"""

from __future__ import annotations

SKLEARN_VERSION = "1.4-2"
XGBOOST_VERSION = "3.0-5"
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
XGBOOST_REPOSITORY = "sagemaker-xgboost"

# region -> ECR registry account of the SageMaker scikit-learn and XGBoost images.
REGISTRY_ACCOUNTS: dict[str, str] = {
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-south-1": "720646828776",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ca-central-1": "341280168497",
    "eu-central-1": "492215442770",
    "eu-north-1": "662702820516",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}

KNOWN_REGIONS: tuple[str, ...] = tuple(sorted(REGISTRY_ACCOUNTS))


class UnknownRegionError(ValueError):
    """The region has no entry in the image table."""


def registry_account(region: str) -> str:
    try:
        return REGISTRY_ACCOUNTS[region]
    except KeyError:
        raise UnknownRegionError(
            f"no SageMaker image registry known for region {region!r} "
            f"(known: {', '.join(KNOWN_REGIONS)}); a CDK stack needs an explicit env region"
        ) from None


def registry_host(region: str) -> str:
    """The region's SageMaker image registry, e.g. 683313688378.dkr.ecr.us-east-1.amazonaws.com."""
    return f"{registry_account(region)}.dkr.ecr.{region}.amazonaws.com"


def _image_uri(region: str, repository: str, tag: str) -> str:
    return f"{registry_host(region)}/{repository}:{tag}"


def sklearn_image_uri(region: str) -> str:
    return _image_uri(region, SKLEARN_REPOSITORY, f"{SKLEARN_VERSION}-cpu-py3")


def xgboost_image_uri(region: str) -> str:
    return _image_uri(region, XGBOOST_REPOSITORY, XGBOOST_VERSION)
