"""Label Studio JSON: tasks in (``workbench import --format label-studio``) and the task shape out
(``workbench export --format label-studio``), for a single-choice classification (a ``Choices`` tag).

The shape is Label Studio's "Basic Label Studio JSON format" (labelstud.io/guide/tasks.html): a JSON
list of tasks (or one task object), each ``{"data": {...}, "annotations": [...], "predictions":
[...], "meta": {...}}``; a task without a ``data`` key is its own data, as Label Studio reads it.
Each annotation and prediction holds a ``result`` list; a Choices result is ``{"from_name",
"to_name", "type": "choices", "value": {"choices": [label]}}``. Results of other types (boxes,
spans) are ignored, with a warning.

Reading a task:

- ``data`` fields become the reader's columns (text, context or features, as for any file);
- the external id is ``meta.external_id`` (what the Workbench writes), else the task's ``id``, else a
  data field chosen with ``id_col``; when ``data`` itself has an ``id`` field, that is the id column;
- ``predictions`` become the item's prelabel (the best-scored prediction with a choice), and so does
  an annotation with no ``completed_by`` (Label Studio gives those to whoever imports them);
- an annotation with ``completed_by: {"email": ...}`` is a human annotation by the Workbench user of
  that name (``alice@workbench.invalid`` is user ``alice``; an address is also tried whole), resolved
  by the import service, which refuses the task when no such user exists (as Label Studio refuses
  an unknown annotator's e-mail). A numeric ``completed_by`` (a Label Studio user id) is refused:
  it names nobody outside that Label Studio.

The whole file is read at once (it is one JSON document), so it is capped at
:data:`MAX_FILE_BYTES` whatever the project's file-size limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.importing.limits import Limits, size
from workbench.importing.readers import MISSING, Reader, Record, _check_columns, _json_depth
from workbench.importing.report import FileProblem, LimitExceeded, Problem

MAX_FILE_BYTES = 512 * 1024 * 1024
EMAIL_DOMAIN = "workbench.invalid"  # the address the export gives a user (RFC 2606: never delivered)
FROM_NAME = "label"  # the Choices tag's name in the exported tasks
TO_NAME = {"text": "text", "image": "image", "tabular": "table"}  # the object tag it labels
PRELABEL_MODEL = "workbench-prelabel"  # model_version of the predictions the export writes

# One human annotation read from a task: (annotator name, label, created_at, lead_time seconds).
HumanLabel = tuple[str, str, datetime | None, float | None]


def annotator_email(name: str) -> str:
    """The ``completed_by`` e-mail the export writes for a Workbench user."""
    return name if "@" in name else f"{name}@{EMAIL_DOMAIN}"


def annotator_names(email: str) -> tuple[str, ...]:
    """The Workbench user names an annotator's e-mail may stand for, most specific first."""
    local, _, domain = email.rpartition("@")
    if domain == EMAIL_DOMAIN and local:
        return (local,)
    return (email, local) if local else (email,)


def choice_result(label: str, to_name: str, result_id: str) -> dict[str, Any]:
    """One Choices result, as Label Studio stores and imports it."""
    return {
        "id": result_id,
        "from_name": FROM_NAME,
        "to_name": to_name,
        "type": "choices",
        "value": {"choices": [label]},
    }


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _TaskProblem(Exception):
    def __init__(self, kind: Problem, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _choice(entry: Any, where: str, skipped: dict[str, int]) -> str | None:
    """The one chosen label of an annotation or prediction (None when it chose nothing)."""
    if not isinstance(entry, dict):
        raise _TaskProblem(Problem.MALFORMED, f"{where} is a JSON {type(entry).__name__}, not an object")
    result = entry.get("result", [])
    if not isinstance(result, list):
        raise _TaskProblem(Problem.MALFORMED, f'{where}: "result" is a JSON {type(result).__name__}, not a list')
    labels = []
    for j, part in enumerate(result):
        if not isinstance(part, dict):
            raise _TaskProblem(Problem.MALFORMED, f"{where}.result[{j}] is not an object")
        kind = part.get("type")
        if kind != "choices":
            skipped[str(kind)] = skipped.get(str(kind), 0) + 1
            continue
        choices = (part.get("value") or {}).get("choices") if isinstance(part.get("value"), dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise _TaskProblem(Problem.MALFORMED, f'{where}.result[{j}]: "value.choices" is not a list of strings')
        if len(choices) > 1:
            raise _TaskProblem(
                Problem.BAD_VALUE, f"{where}.result[{j}] chose {len(choices)} labels; an item takes one label"
            )
        labels += choices
    if len(labels) > 1:
        raise _TaskProblem(Problem.BAD_VALUE, f"{where} has {len(labels)} choices results; one is expected")
    return labels[0] if labels else None


class LabelStudioReader(Reader):
    """A Label Studio JSON file as rows: one per task (see the module docstring)."""

    format = "label-studio"

    def __init__(self, path: Path, *, limits: Limits | None = None) -> None:
        self.path = path
        self.limits = limits = limits or Limits()
        self.total = n_bytes = path.stat().st_size
        if n_bytes > MAX_FILE_BYTES:
            raise LimitExceeded(
                f"a Label Studio file is read whole; this one has {size(n_bytes)}, over {size(MAX_FILE_BYTES)}"
            )
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FileProblem(f"not UTF-8 (byte {exc.start}): Label Studio JSON is UTF-8") from None
        self.encoding = "utf-8"
        if _json_depth(text, limits.max_depth + 4) > limits.max_depth + 4:  # list, task, data: 3 levels of framing
            raise FileProblem(f"JSON nested more than {limits.max_depth} deep inside a task (limits.max_depth)")
        try:
            document = json.loads(text)
        except ValueError as exc:
            where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise FileProblem(f"not valid JSON{where}: {getattr(exc, 'msg', exc)}") from None
        if isinstance(document, dict):
            document = [document]
        if not isinstance(document, list):
            raise FileProblem(f"a Label Studio file is a JSON list of tasks, not a JSON {type(document).__name__}")
        if not document:
            raise FileProblem("file has no data rows (an empty list of tasks)")
        if len(document) > limits.max_rows:
            raise LimitExceeded(f"the file has {len(document):,} tasks, over {limits.max_rows:,} (limits.max_rows)")
        self._skipped: dict[str, int] = {}
        self.human: dict[int, list[HumanLabel]] = {}  # row -> the task's annotations by named users
        self._tasks: list[tuple[dict | None, list | None]] = []  # (fields, problems) per task
        keys: dict[str, None] = {}
        has_id = has_prelabel = False
        for index, task in enumerate(document):
            try:
                fields = self._task(index, task)
            except _TaskProblem as problem:
                self._tasks.append((None, [(problem.kind, f"tasks[{index}]: {problem}")]))
                continue
            has_id = has_id or "\0id" in fields
            has_prelabel = has_prelabel or "\0prelabel" in fields
            for key in fields:
                if not key.startswith("\0"):
                    keys[key] = None
            self._tasks.append((fields, None))
        data_keys = list(keys)
        self.id_col = "id" if "id" in keys or has_id else None
        self.prelabel_col = None
        if has_prelabel:
            self.prelabel_col = next(n for n in ("prelabel", "_prelabel", "__prelabel__") if n not in keys)
        columns = list(data_keys)
        if has_id and "id" not in keys:
            columns.insert(0, "id")
        if self.prelabel_col:
            columns.append(self.prelabel_col)
        self.columns = _check_columns(columns, limits)
        self._done = 0

    def _task(self, index: int, task: Any) -> dict[str, Any]:
        """A task's columns (data fields; "\\0id" and "\\0prelabel" for its id and prelabel)."""
        if not isinstance(task, dict):
            raise _TaskProblem(Problem.MALFORMED, f"a JSON {type(task).__name__}, not a task object")
        framing = ("id", "meta", "annotations", "completions", "predictions")
        data = task["data"] if "data" in task else {k: v for k, v in task.items() if k not in framing}
        if not isinstance(data, dict):
            raise _TaskProblem(Problem.MALFORMED, f'"data" is a JSON {type(data).__name__}, not an object')
        if not data:
            raise _TaskProblem(Problem.MALFORMED, '"data" has no fields')
        fields: dict[str, Any] = dict(data)
        meta = task.get("meta")
        external = meta.get("external_id") if isinstance(meta, dict) else None
        if external is None:
            external = task.get("id")
        if external is not None:
            fields["\0id"] = external
        for name in ("annotations", "completions", "predictions"):
            if name in task and not isinstance(task[name], list):
                raise _TaskProblem(Problem.MALFORMED, f'"{name}" is a JSON {type(task[name]).__name__}, not a list')
        prelabel = None
        human: list[HumanLabel] = []
        seen: set[str] = set()
        annotations = task["annotations"] if "annotations" in task else task.get("completions", [])
        for j, annotation in enumerate(annotations):
            label = _choice(annotation, f"annotations[{j}]", self._skipped)
            if label is None or annotation.get("was_cancelled"):
                continue
            who = annotation.get("completed_by")
            if who is None:
                prelabel = prelabel or label
                continue
            if isinstance(who, dict) and isinstance(who.get("email"), str) and who["email"].strip():
                email = who["email"].strip()
            elif isinstance(who, bool) or not isinstance(who, (dict, int)):
                raise _TaskProblem(Problem.MALFORMED, f"annotations[{j}]: completed_by {who!r} is not a user")
            elif isinstance(who, int):
                raise _TaskProblem(
                    Problem.BAD_VALUE,
                    f"annotations[{j}] is by Label Studio user id {who}, which names nobody here; "
                    'export with completed_by {"email": ...} or drop completed_by to import it as a prelabel',
                )
            else:
                raise _TaskProblem(Problem.MALFORMED, f'annotations[{j}]: completed_by has no "email"')
            if email in seen:
                raise _TaskProblem(Problem.DUPLICATE_ID, f"annotations[{j}]: {email!r} annotated this task twice")
            seen.add(email)
            lead = annotation.get("lead_time")
            lead = float(lead) if isinstance(lead, (int, float)) and not isinstance(lead, bool) and lead >= 0 else None
            human.append((email, label, _when(annotation.get("created_at")), lead))
        if prelabel is None:
            best: tuple[float, str] | None = None
            for j, prediction in enumerate(task.get("predictions", [])):
                label = _choice(prediction, f"predictions[{j}]", self._skipped)
                score = prediction.get("score")
                score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else -1.0
                if label is not None and (best is None or score > best[0]):
                    best = (score, label)
            prelabel = best[1] if best else None
        if prelabel is not None:
            fields["\0prelabel"] = prelabel
        if human:
            self.human[index + 1] = human
        return fields

    def done(self) -> int:
        return self._done

    def records(self, needed: list[str]) -> Iterator[Record]:
        for index, (fields, problems) in enumerate(self._tasks):
            row = index + 1
            self._done = self.total * row // max(len(self._tasks), 1)
            if fields is None:  # the task's problems instead
                yield row, None, None, problems
                continue
            values = []
            for name in needed:
                if name == self.prelabel_col:
                    values.append(fields.get("\0prelabel", MISSING))
                elif name == "id" and "id" not in fields:
                    values.append(fields.get("\0id", MISSING))
                else:
                    values.append(fields.get(name, MISSING))
            yield row, None, values, None

    def warnings(self) -> list[str]:
        if not self._skipped:
            return []
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self._skipped.items()))
        return [f"ignored results that are not choices ({kinds}): the Workbench takes one label per item"]
