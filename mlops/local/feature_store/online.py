"""The online store: the latest record per record identifier, as Feature Store keeps it.

A record replaces the stored one only when its event time is newer (PutRecord's rule: an
older or equal event time goes to the offline store only). SQLite, so a running
`mlops local serve` sees what an ingestion wrote without restarting.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

ONLINE_FILE = "online.sqlite"


class OnlineStoreError(ValueError):
    """An online store that cannot be opened; str() is one line for 'ERROR: ...'."""


class LocalOnlineStore:
    def __init__(self, store_dir: Path) -> None:
        self.path = Path(store_dir) / ONLINE_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection per thread of the server: sqlite3 objects are not shared.
            self._connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        except (OSError, sqlite3.Error) as error:
            raise OnlineStoreError(
                f"cannot open the online store {self.path} ({_reason(error)}); "
                "give a writable --feature-store folder"
            ) from None
        try:
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS records (feature_group TEXT NOT NULL, "
                "record_id TEXT NOT NULL, event_time TEXT NOT NULL, record TEXT NOT NULL, "
                "PRIMARY KEY (feature_group, record_id))"
            )
            self._connection.commit()
        except sqlite3.Error as error:
            self._connection.close()
            # Not "delete the file": the ingestion ledger beside it would skip every table.
            raise OnlineStoreError(
                f"{self.path} is not a usable online store ({error}); delete the folder "
                f"{self.path.parent} and run `mlops local ingest` again"
            ) from None

    def put_records(
        self, group: str, records: Iterable[Mapping[str, str]], id_name: str, time_name: str
    ) -> int:
        """Upsert where newer; returns how many online records changed."""
        before = self._connection.total_changes
        with self._connection:
            self._connection.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?) "
                "ON CONFLICT (feature_group, record_id) DO UPDATE SET "
                "event_time = excluded.event_time, record = excluded.record "
                "WHERE excluded.event_time > records.event_time",
                ((group, r[id_name], r[time_name], json.dumps(r, sort_keys=True)) for r in records),
            )
        return self._connection.total_changes - before

    def get_records(self, group: str, record_ids: list[str]) -> dict[str, dict[str, str]]:
        if not record_ids:
            return {}
        marks = ",".join("?" * len(record_ids))
        rows = self._connection.execute(
            f"SELECT record_id, record FROM records WHERE feature_group = ? "
            f"AND record_id IN ({marks})",
            (group, *record_ids),
        ).fetchall()
        return {record_id: json.loads(record) for record_id, record in rows}

    def count(self, group: str) -> int:
        row = self._connection.execute(
            "SELECT COUNT(*) FROM records WHERE feature_group = ?", (group,)
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        self._connection.close()


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)
