"""Exits 0 when every test dependency of python/requirements-test.txt is importable."""
import duckdb
import duckdb_ext  # noqa: F401
import maturin  # noqa: F401
import pandas  # noqa: F401
import polars  # noqa: F401
import pyarrow  # noqa: F401
import pyiceberg  # noqa: F401
import pytest  # noqa: F401

assert duckdb.__version__ == "1.4.4", duckdb.__version__
