"""Reading, decoding and validating import files, without a database.

`readers` stream records out of CSV/TSV/JSONL/Parquet files and image folders, `encoding` decodes
UTF-8/UTF-16 and names any other encoding, `validate` turns a record into an item's content, and
`report` holds what an import found. The service (workbench.services.imports) writes the items.
"""

from workbench.importing.report import MAX_LISTED_ERRORS, ImportReport, Problem, RowError
from workbench.importing.validate import ImportOptions

__all__ = ["MAX_LISTED_ERRORS", "ImportOptions", "ImportReport", "Problem", "RowError"]
