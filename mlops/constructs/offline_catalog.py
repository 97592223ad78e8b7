"""The Glue database the training join queries: the feature groups' offline-store tables (their
names pinned through DataCatalogConfig, see feature_store.py) and the raw flights table."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops.pipeline_definition.offline_join import RAW_FLIGHT_COLUMNS, OfflineTables

# Athena's name for the account's Glue Data Catalog.
DATA_CATALOG = "AwsDataCatalog"


class OfflineCatalog(Construct):
    """A Glue database with the raw flights table over raw/ (LazySimpleSerDe, header skipped,
    "NA" is null). The feature groups create their own tables in it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database_name: str,
        data_bucket: s3.IBucket,
        raw_prefix: str,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.tables = OfflineTables(database=database_name, catalog=DATA_CATALOG)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name,
                description="Offline-store tables of the feature groups and the raw flights.",
            ),
        )
        self.flights_table = glue.CfnTable(
            self,
            "RawFlights",
            catalog_id=stack.account,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=self.tables.flights,
                description="Raw flights CSV files under the raw/ prefix (*flights.csv).",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "csv", "skip.header.line.count": "1"},
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=data_bucket.s3_url_for_object(raw_prefix),
                    columns=[
                        glue.CfnTable.ColumnProperty(name=name, type=kind)
                        for name, kind in RAW_FLIGHT_COLUMNS
                    ],
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                        parameters={"field.delim": ",", "serialization.null.format": "NA"},
                    ),
                ),
            ),
        )
        self.flights_table.add_resource_dependency(self.database)
        policy = cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY
        self.database.apply_removal_policy(policy)
        self.flights_table.apply_removal_policy(policy)

    def table_arns(self, *names: str) -> list[str]:
        stack = cdk.Stack.of(self)
        return [
            stack.format_arn(
                service="glue", resource="table", resource_name=f"{self.tables.database}/{name}"
            )
            for name in names
        ]
