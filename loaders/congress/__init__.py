"""Congressional stock-trade disclosures: cleaning, identity resolution and loading."""

from .loader import (CongressData, CongressFileError, LoadReport, Reject, find_files, load_congress,
                     read_congress, write_congress)
from .names import name_key, resolve
from .rows import RawRow, check_row

__all__ = ["CongressData", "CongressFileError", "LoadReport", "Reject", "find_files", "load_congress",
           "read_congress", "write_congress", "name_key", "resolve", "RawRow", "check_row"]
