"""The local Glue catalog of a synthesized stage: the tables its Athena queries may name, each
backed by local files (mlops/local/athena.py runs the queries).

Read from the same cloud assembly the pipeline definition comes from, so a table exists locally
exactly when the stage defines it:
- AWS::SageMaker::FeatureGroup with OfflineStoreConfig.DataCatalogConfig: the group's table,
  backed by the local offline store of that group (its record identifier names the group in
  pipeline_steps/feature_schema.py);
- AWS::Glue::Table with LazySimpleSerDe: a CSV table whose location maps into the local S3 tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.local.athena import CsvTable, LocalCatalog, OfflineStoreTable
from mlops.local.contract import local_path_for_uri
from mlops.local.definition_source import PipelineSource, list_stacks, resolver_for
from mlops.local.feature_store.offline import data_dir
from pipeline_steps import feature_schema

DATA_CATALOG = "AwsDataCatalog"
_LAZY_SIMPLE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
_GROUP_OF_IDENTIFIER = {g.record_identifier: g.name for g in feature_schema.FEATURE_GROUPS}


def _csv_table(properties: Mapping[str, Any], s3_root: Path) -> tuple[str, CsvTable] | None:
    table = properties.get("TableInput", {})
    storage = table.get("StorageDescriptor", {})
    serde = storage.get("SerdeInfo", {})
    if serde.get("SerializationLibrary") != _LAZY_SIMPLE:
        return None  # only delimited text tables are emulated
    location = str(storage["Location"])
    parameters = {**table.get("Parameters", {}), **serde.get("Parameters", {})}
    return str(properties["DatabaseName"]), CsvTable(
        name=str(table["Name"]),
        folder=local_path_for_uri(location, s3_root),
        s3_location=location,
        columns=tuple((str(c["Name"]), str(c["Type"])) for c in storage.get("Columns", [])),
        null_format=str(parameters.get("serialization.null.format", "")),
        skip_header_lines=int(parameters.get("skip.header.line.count", 0)),
    )


def _offline_table(
    properties: Mapping[str, Any], feature_store: Path
) -> tuple[str, str, OfflineStoreTable] | None:
    config = properties.get("OfflineStoreConfig", {}).get("DataCatalogConfig")
    group = _GROUP_OF_IDENTIFIER.get(str(properties.get("RecordIdentifierFeatureName")))
    if not config or group is None:
        return None
    columns = tuple(
        (str(d["FeatureName"]), str(d["FeatureType"]))
        for d in properties.get("FeatureDefinitions", [])
    )
    table = OfflineStoreTable(str(config["TableName"]), data_dir(feature_store, group), columns)
    return str(config["Catalog"]), str(config["Database"]), table


def catalog_from_assembly(
    cdk_out: Path, source: PipelineSource, *, s3_root: Path, feature_store: Path
) -> LocalCatalog:
    """The Glue tables of the pipeline's stage (its stacks in the same assembly)."""
    stacks = list_stacks(Path(cdk_out))
    stage = source.stack.display_name.split("/")[0]
    siblings = [
        s
        for s in stacks
        if s.assembly_dir == source.stack.assembly_dir and s.display_name.split("/")[0] == stage
    ]
    databases: dict[tuple[str, str], list[OfflineStoreTable | CsvTable]] = {}
    for stack in siblings:
        resolver = resolver_for(stack, stacks)
        for resource in stack.template().get("Resources", {}).values():
            kind = resource.get("Type")
            if kind not in ("AWS::Glue::Table", "AWS::SageMaker::FeatureGroup"):
                continue
            properties = resolver.resolve(resource.get("Properties", {}))
            if kind == "AWS::Glue::Table":
                found = _csv_table(properties, s3_root)
                if found:
                    databases.setdefault((DATA_CATALOG, found[0]), []).append(found[1])
            else:
                offline = _offline_table(properties, feature_store)
                if offline:
                    databases.setdefault((offline[0], offline[1]), []).append(offline[2])
    return LocalCatalog({key: tuple(tables) for key, tables in databases.items()})
