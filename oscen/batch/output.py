"""A batch's output folder: audio files, a metadata table, and what makes a rerun resumable.

Layout (a Hugging Face ``audiofolder``: ``load_dataset("audiofolder", data_dir=OUT)``)::

    OUT/
      metadata.csv          one row per rendered item: file_name (audio/000042.flac), index,
                            the parameters, note/velocity/duration if used, peak
      audio/000042.flac     the items' audio
      items.parquet         every item, failed ones too: status ("ok"/"error"), error, render
                            seconds, worker, and the same columns
      batch.json            what was rendered (patch, seconds, rate, seed, format, n)
      .oscen-batch/rows.jsonl   the journal: one line per finished item, appended as it finishes

The tables are rebuilt from the journal at the end of every run, so a run that is killed loses
nothing but the items still rendering. A rerun into the same folder (same batch.json) skips every
item whose journal row says "ok" and whose file is there; failed items are tried again. The full
table is not called metadata.parquet on purpose: ``audiofolder`` refuses metadata files of two
formats in one folder, and failed items (no file) must not be in its metadata.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from .params import Item
from .worker import AudioFormat, ItemResult

JOURNAL = ".oscen-batch/rows.jsonl"
FIRST_COLUMNS = ("file_name", "index")
STATUS_COLUMNS = ("status", "error", "seconds", "worker")


class OutputError(ValueError):
    """An output folder that cannot be used as asked (another batch is there, say)."""


class OutputDir:
    """Writes one batch's files; the driver calls :meth:`write` for each finished item."""

    def __init__(self, root: str | Path, config: dict[str, Any], audio: AudioFormat, n: int) -> None:
        self.root = Path(root)
        self.audio = audio
        self.width = max(6, len(str(max(n - 1, 0))))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "audio").mkdir(exist_ok=True)
        (self.root / JOURNAL).parent.mkdir(exist_ok=True)
        config_path = self.root / "batch.json"
        if config_path.exists():
            try:
                old = json.loads(config_path.read_text())
            except json.JSONDecodeError:
                old = None
            if old != config:
                changed = (
                    sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                    if isinstance(old, dict)
                    else ["batch.json"]
                )
                raise OutputError(
                    f"{self.root} holds another batch (differs in: {', '.join(changed)}); "
                    "render into a new folder, or delete that one to start over"
                )
        else:
            config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        self.rows = self._read_journal()
        self._journal = open(self.root / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def file_name(self, index: int) -> str:
        return f"audio/{index:0{self.width}d}{self.audio.extension}"

    def done(self) -> set[int]:
        """Items finished in an earlier run: an "ok" row and its file on disk."""
        return {
            i
            for i, row in self.rows.items()
            if row["status"] == "ok" and (self.root / row["file_name"]).is_file()
        }

    def write(self, item: Item, result: ItemResult) -> dict[str, Any]:
        """Write the item's file (atomically) and then its journal row; returns the row."""
        row: dict[str, Any] = {"file_name": None, "index": item.index}
        if result.ok:
            assert result.data is not None
            name = self.file_name(item.index)
            path = self.root / name
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(result.data)
            os.replace(tmp, path)
            row["file_name"] = name
        row.update(item.columns())
        row.update(
            status="ok" if result.ok else "error",
            error=result.error,
            peak=result.peak if result.ok else None,
            seconds=round(result.seconds, 6),
            worker=result.worker,
        )
        self._journal.write(json.dumps(row) + "\n")
        self._journal.flush()
        self.rows[item.index] = row
        return row

    def close(self) -> None:
        """Rebuild metadata.csv and items.parquet from every row so far."""
        self._journal.close()
        rows = [self.rows[i] for i in sorted(self.rows)]
        columns = _columns(rows)
        ok = [r for r in rows if r["status"] == "ok"]
        meta_columns = [c for c in columns if c not in STATUS_COLUMNS]
        tmp = self.root / "metadata.csv.part"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, meta_columns, extrasaction="ignore")
            writer.writeheader()
            for r in ok:
                writer.writerow({c: "" if r.get(c) is None else r.get(c) for c in meta_columns})
        os.replace(tmp, self.root / "metadata.csv")
        write_parquet(self.root / "items.parquet", rows, columns)

    def _read_journal(self) -> dict[int, dict[str, Any]]:
        path = self.root / JOURNAL
        rows: dict[int, dict[str, Any]] = {}
        if not path.exists():
            return rows
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash: that item renders again
                    continue
                if isinstance(row, dict) and isinstance(row.get("index"), int):
                    rows[row["index"]] = row
        return rows


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(FIRST_COLUMNS)
    for r in rows:
        seen.update(dict.fromkeys(r))
    tail = [c for c in (*STATUS_COLUMNS, "peak") if c in seen]
    middle = [c for c in seen if c not in FIRST_COLUMNS and c not in tail]
    return [*FIRST_COLUMNS, *middle, *tail]


def write_parquet(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """The rows as a Parquet file through pyarrow (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = (
        pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
        if rows
        else pa.table({c: pa.array([], pa.string()) for c in columns})
    )
    tmp = path.with_name(path.name + ".part")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise OutputError(
            "writing a batch to a folder needs pyarrow for its Parquet table: pip install 'oscen[batch]'"
        ) from None
