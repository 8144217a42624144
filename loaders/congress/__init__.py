"""Congressional stock-trade disclosures: cleaning, identity resolution and loading."""

from .loader import (CongressData, CongressFileError, LoadReport, Reject, find_files, load_congress,
                     read_congress, write_congress)
from .names import name_key, resolve

__all__ = ["CongressData", "CongressFileError", "LoadReport", "Reject", "find_files", "load_congress",
           "read_congress", "write_congress", "name_key", "resolve"]
