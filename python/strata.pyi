"""Strata: version control for tables, from Python.

Tables are read and written as Arrow. A table handle (``repo.table(name, rev)``) is read
directly by DuckDB, Polars and pyarrow through ``__arrow_c_stream__``; ``repo.write()`` takes
anything with ``__arrow_c_stream__`` (pyarrow, Polars, DuckDB results) and pandas DataFrames.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, TypedDict, Union

__version__: str

PathLike = Union[str, "os.PathLike[str]"]
KeyValue = Union[int, str, bytes, bool, Any]
"""A key value: int, str, bytes, bool, or a date, datetime or Decimal (given as text)."""
Key = Union[KeyValue, Tuple[KeyValue, ...]]
"""A key: one value, or a tuple for (the first columns of) a composite key."""
Predicate = Tuple[str, Literal["=", "==", "<", "<=", ">", ">=", "in"], Any]
Filter = Union[Key, slice, List[Predicate], List[Union[Key, slice]]]
"""Rows by key: a key; ``slice(start, stop)`` for ``start <= key < stop`` (either None for no
bound); predicates on the first key column, all true at once, such as
``[("id", ">=", 10), ("id", "<", 20)]``; or a list of keys and slices (any of them)."""

class StrataError(Exception):
    """Base class of every error raised by Strata."""
    kind: str
    """The kind of failure: conflict, not_found, already_exists, corrupt, invalid_input,
    invalid_state, unavailable, permission_denied, unsupported, io."""
    advice: Optional[str]
    """What to do about it, when there is something to say (also at the end of the message)."""

class ConflictError(StrataError):
    """Someone else changed what the operation relied on: a remote branch moved, a key exists."""

class NotFoundError(StrataError):
    """What was named does not exist: a table, a revision, a repository, a remote."""

class AlreadyExistsError(StrataError):
    """What was to be created exists already: a table, a branch, a tag, a repository."""

class CorruptError(StrataError):
    """Stored data is damaged or missing."""

class InvalidInputError(StrataError):
    """The input is not acceptable: data, a name, an option, a revision."""

class InvalidStateError(StrataError):
    """The repository's state does not allow the operation now: uncommitted changes, a merge in
    progress, nothing to commit."""

class UnavailableError(StrataError):
    """The storage could not be reached, or is busy; trying again later may work."""

class PermissionDeniedError(StrataError):
    """The storage refused the credentials or the access."""

class UnsupportedError(StrataError):
    """Data or a store this version cannot use: a newer format, a column type, a store without
    conditional writes."""

class StrataIOError(StrataError):
    """A local file or folder could not be read or written."""

class RefInfo(TypedDict):
    name: str
    commit: str
    current: bool

class RemoteRef(TypedDict):
    """A branch or tag of a remote read in place."""
    name: str
    commit: str

class CommitInfo(TypedDict):
    id: str
    parents: List[str]
    author: str
    time: int
    """Seconds since the Unix epoch."""
    message: str
    tables: Dict[str, str]
    """Table name to table version id."""

class IcebergView(TypedDict):
    table: str
    ref: str
    commit: str
    location: str
    metadata: str
    version: int
    files_written: int
    bytes_written: int

class DataFile(TypedDict, total=False):
    uri: str
    rows: int
    bytes: int
    key_min: List[str]
    key_max: List[str]
    # Present for a chunk with a delta: its rows replace the chunk's rows with the same key,
    # and its footer's `strata.deletes` lists the keys of the chunk's rows it deletes.
    delta: str

class TableSummary(TypedDict):
    table: str
    id: str
    rows: int
    columns: int
    primary_key: List[str]

class WriteReport(TypedDict):
    table: str
    table_id: str
    rows: int
    inserted: int
    updated: int
    deleted: int
    missing: int
    chunks_written: int
    chunks_reused: int
    created: bool
    notes: List[str]

class RemoteInfo(TypedDict):
    name: str
    url: str
    options: Dict[str, str]

class Conflict(TypedDict):
    table: str
    kind: str
    """modify/modify, delete/modify, modify/delete or add/add (ours/theirs)."""
    key: Dict[str, Any]
    cells: List[Dict[str, Any]]
    """The conflicting cells: column, base, ours, theirs."""

class MergeResult(TypedDict, total=False):
    outcome: Literal["up_to_date", "fast_forward", "merged", "conflicts"]
    commit: str
    rows: int
    tables: List[str]
    conflicts: List[Conflict]

class ArrowStreamExportable:
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

class RecordBatchStream:
    """A one-pass stream of Arrow record batches, decoded as they are asked for (without the
    GIL). Iterate it for ``pyarrow.RecordBatch`` objects, hand it to anything that reads the
    Arrow PyCapsule interface, or call ``read_all()``."""

    @property
    def schema(self) -> Any:
        """The ``pyarrow.Schema`` of the batches (needs pyarrow)."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule interface: hands the stream to its consumer (once)."""
    def __iter__(self) -> Iterator[Any]: ...
    def __next__(self) -> Any:
        """The next ``pyarrow.RecordBatch`` (needs pyarrow)."""
    def read_all(self) -> Any:
        """The rest of the stream as a ``pyarrow.Table`` (needs pyarrow)."""

class Table:
    """A table of a repository at a revision: its schema, key and size, and its rows.

    Readers of the Arrow PyCapsule interface read it directly, with no copy:
    ``duckdb.sql("SELECT ... FROM t")``, ``polars.from_arrow(t)``, ``pyarrow.table(t)``.
    Each read scans the table afresh."""

    @property
    def name(self) -> str: ...
    @property
    def rev(self) -> Optional[str]:
        """The revision this handle reads (None: the working version)."""
    @property
    def commit(self) -> Optional[str]:
        """The commit id the revision named when the handle was made (None: a repository's
        working version; a remote's handle always has one)."""
    @property
    def id(self) -> str:
        """The table version's id."""
    @property
    def schema(self) -> Any:
        """The ``pyarrow.Schema`` of the rows (needs pyarrow)."""
    @property
    def columns(self) -> List[Tuple[str, str, bool]]:
        """(name, Strata type, nullable) of each column; needs no pyarrow."""
    @property
    def primary_key(self) -> List[str]: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def num_chunks(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def to_arrow(self, columns: Optional[Sequence[str]] = None, filter: Optional[Filter] = None) -> Any:
        """The rows as a ``pyarrow.Table`` in key order (needs pyarrow). Only the chunks that the
        filter's keys reach are read."""
    def to_pandas(self, columns: Optional[Sequence[str]] = None, filter: Optional[Filter] = None) -> Any:
        """The rows as a pandas DataFrame (needs pyarrow and pandas)."""
    def to_batches(self, columns: Optional[Sequence[str]] = None, filter: Optional[Filter] = None) -> RecordBatchStream:
        """The rows as a stream of batches, decoded as they are asked for."""
    def chunks_read(self, filter: Optional[Filter] = None) -> int:
        """How many chunks a read with this filter reads (the index skips the others)."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule interface: a fresh stream of every row."""

class Repository:
    """A Strata repository on the local disk."""

    @property
    def path(self) -> pathlib.Path:
        """The folder that holds the repository (the one containing ``.strata``)."""
    @property
    def head(self) -> Optional[str]:
        """The branch checked out (None when HEAD is detached)."""
    @property
    def remotes(self) -> List[RemoteInfo]:
        """The configured remotes."""

    def status(self) -> Dict[str, Any]:
        """The working tables compared with HEAD (``tables``), the branch, a merge in progress,
        and how the branch compares with its upstream."""
    def commit(
        self, message: Optional[str] = None, author: Optional[str] = None, amend: bool = False
    ) -> str:
        """Records every working change as a commit on the current branch; returns its id.
        ``author`` is "Name <email>" (default: STRATA_AUTHOR, else the identity `strata config` sets, else the user name).
        ``amend=True`` replaces the last commit instead (same parents; old message and author
        unless given)."""
    def log(
        self, rev: Optional[str] = None, n: Optional[int] = None, all: bool = False
    ) -> List[CommitInfo]:
        """The history from ``rev`` (default: HEAD; ``A..B`` and ``A...B`` ranges too), newest
        first, at most ``n`` commits; ``all=True`` starts from every branch, tag and
        remote-tracking branch."""
    def reflog(self, name: Optional[str] = None) -> List[Dict[str, Any]]:
        """Where a branch or tag (default: the current branch) pointed, newest first: dicts of
        ``selector`` (``main@{N}``, usable as a revision), ``commit``, ``time`` and ``reason``."""
    def revert(self, rev: str, mainline: Optional[int] = None, author: Optional[str] = None) -> str:
        """A new commit undoing what ``rev`` changed; a conflicting cell raises ConflictError
        and changes nothing. Returns its id."""
    def cherry_pick(
        self,
        rev: str,
        mainline: Optional[int] = None,
        record_origin: bool = False,
        author: Optional[str] = None,
    ) -> str:
        """Applies what ``rev`` changed on top of HEAD as a new commit with its message and
        author. Returns its id."""
    def merge_base(self, a: str, b: str) -> Optional[str]:
        """The best common ancestor of two revisions (None: their histories never meet)."""
    def alter_table(self, table: str, changes: Sequence[Sequence[str]]) -> Dict[str, Any]:
        """Changes a working table's columns, all or nothing, in order: ``("add", NAME, TYPE)``,
        ``("add", NAME, TYPE, DEFAULT)``, ``("drop", NAME)``, ``("rename", OLD, NEW)``,
        ``("set_type", NAME, TYPE)``."""
    def show(self, rev: str = "HEAD") -> Dict[str, Any]:
        """A commit and what it changed, table by table (``changes``)."""
    def resolve(self, rev: str) -> str:
        """The commit id a revision names (branch, tag, id or prefix, HEAD, REV~N, REV^)."""

    def branches(self) -> List[RefInfo]: ...
    def branch(self, name: str, start: Optional[str] = None) -> str:
        """Creates a branch at ``start`` (default: HEAD); returns its commit id."""
    def delete_branch(self, name: str, force: bool = False) -> str:
        """Deletes a branch; unless ``force``, refused when its commits are in neither HEAD's
        history nor a remote branch's."""
    def tags(self) -> List[RefInfo]: ...
    def tag(self, name: str, rev: Optional[str] = None, message: Optional[str] = None) -> str:
        """Creates a tag at ``rev`` (default: HEAD); returns its commit id. With ``message``,
        an annotated tag (tagger, time and message travel with it)."""
    def delete_tag(self, name: str) -> str: ...
    def checkout(self, rev: str, force: bool = False) -> None:
        """Switches to a branch or any revision (detached). Refuses over uncommitted changes
        unless ``force``."""
    def reset_hard(self, rev: str = "HEAD") -> str:
        """Moves the current branch to ``rev`` and discards every working change."""

    def tables(self, rev: Optional[str] = None) -> List[TableSummary]: ...
    def table(self, name: str, rev: Optional[str] = None) -> Table:
        """A handle on a table at a revision (default: the working version)."""
    def iceberg(
        self, table: str, rev: Optional[str] = None, remote: Optional[str] = None
    ) -> IcebergView:
        """The Iceberg view of a table at a branch or tag (default: the current branch), in
        this repository or on a remote; published first if missing."""
    def ls_files(
        self, table: str, rev: Optional[str] = None, remote: Optional[str] = None
    ) -> List[DataFile]:
        """The chunk files of a table at a revision, with rows, bytes and key bounds."""
    def write(
        self,
        name: str,
        data: Any,
        mode: Literal["create", "append", "upsert", "replace"] = "create",
        primary_key: Union[str, Sequence[str], None] = None,
        chunk_rows: Optional[int] = None,
        types: Optional[Dict[str, str]] = None,
    ) -> WriteReport:
        """Writes Arrow data (anything with ``__arrow_c_stream__``) or a pandas DataFrame into a
        working table; commit to record it. ``create`` needs ``primary_key``. ``types`` gives
        some columns' types for a new table (``{"zip": "utf8"}``)."""
    def delete(self, name: str, keys: Any) -> WriteReport:
        """Deletes rows by key: a list of keys, or Arrow data of exactly the key columns."""
    def drop_table(self, name: str) -> None: ...
    def rename_table(self, old: str, new: str) -> None: ...

    def diff(
        self,
        a: Optional[str] = None,
        b: Optional[str] = None,
        table: Optional[str] = None,
        where: Optional[str] = None,
    ) -> Any:
        """The rows that differ between revision ``a`` (default: HEAD) and ``b`` (default: the
        working tables). For one ``table`` a ``pyarrow.Table`` with the key columns, ``kind``
        (added, removed, modified), ``old_<column>`` and ``new_<column>``; without ``table`` a
        dict of such tables by name. ``where`` keeps only the rows a filter passes, as
        ``strata diff --where`` (``"price > 10 and from_status = 'open'"``). Needs pyarrow."""
    def merge(
        self,
        rev: str,
        message: Optional[str] = None,
        no_ff: bool = False,
        ff_only: bool = False,
        author: Optional[str] = None,
    ) -> MergeResult:
        """Merges a revision into the current branch. On conflicts the merge stays in progress:
        resolve and commit, or ``merge_abort()``."""
    def conflicts(self, table: Optional[str] = None) -> Optional[List[Conflict]]: ...
    def resolve_conflicts(self, side: Literal["ours", "theirs"], table: Optional[str] = None) -> Tuple[int, int]:
        """Takes one side's rows for the conflicts; returns (resolved, left)."""
    def merge_abort(self) -> None: ...

    def add_remote(self, name: str, url: str, storage_options: Optional[Mapping[str, Any]] = None) -> RemoteInfo:
        """Adds a remote: a folder, or s3://bucket/prefix (gs://, az://). ``storage_options``
        are non-secret store options (endpoint, region, allow_http, ...), kept with the remote;
        credentials come from the environment or an AWS profile."""
    def remove_remote(self, name: str) -> None: ...
    def push(
        self,
        remote: Optional[str] = None,
        branches: Union[str, Sequence[str], None] = None,
        force: bool = False,
        tags: bool = False,
        set_upstream: bool = False,
        delete: Optional[Sequence[str]] = None,
        atomic: bool = False,
        create: bool = False,
        merge: bool = True,
    ) -> Dict[str, Any]:
        """Uploads branches (default: the current one) and moves them on the remote. When the
        remote branch moved meanwhile, its new commits are merged in (when no row conflicts)
        and the push tried again; ``merge=False`` raises ConflictError instead (pull first).
        ``create=True`` makes the remote's location a new repository if it is not one yet (the
        first push to a new folder or bucket prefix)."""
    def fetch(self, remote: Optional[str] = None, prune: bool = False) -> Dict[str, Any]: ...
    def pull(
        self,
        remote: Optional[str] = None,
        branch: Optional[str] = None,
        ff_only: bool = False,
        author: Optional[str] = None,
        rebase: bool = False,
    ) -> Dict[str, Any]:
        """Fetches, then merges the remote branch (``rebase=True``: replays this branch's own
        commits on top of it); ``outcome`` is as merge() returns."""

class RemoteRepository:
    """A repository on a remote (a folder, s3://, gs://, az://), read where it lies: any
    branch, tag or commit, with no clone. Read-only. Every call reads the remote's refs
    afresh, so it sees every push at once; a table handle keeps the commit it was made at."""

    @property
    def url(self) -> str:
        """The remote's URL (a folder as a file:// URL)."""
    def branches(self) -> List[RemoteRef]:
        """The remote's branches as they are now."""
    def tags(self) -> List[RemoteRef]:
        """The remote's tags as they are now."""
    def resolve(self, rev: Optional[str] = None) -> str:
        """The commit id a branch, tag, commit id (or unique prefix) names, with ``~N`` /
        ``^N``. Default: the branch ``main``, else the first branch."""
    def tables(self, rev: Optional[str] = None) -> List[TableSummary]:
        """The tables at a revision (default: ``main``, else the first branch)."""
    def table(self, name: str, rev: Optional[str] = None) -> Table:
        """A handle on a table at a revision (default: ``main``, else the first branch), read
        straight from the remote: only the chunks and columns asked for are fetched."""
    def log(self, rev: Optional[str] = None, n: Optional[int] = None, all: bool = False) -> List[CommitInfo]:
        """The history from a revision (default: ``main``, else the first branch), newest
        first; ``all``: from every branch and tag. Ranges (``a..b``) need a clone."""
    def diff(
        self, a: str, b: Optional[str] = None, table: Optional[str] = None, where: Optional[str] = None
    ) -> Any:
        """The rows that differ from revision ``a`` to ``b`` (default: ``main``, else the first
        branch), as ``Repository.diff`` gives them; only the chunks that differ are fetched."""

def init(path: PathLike) -> Repository:
    """Creates an empty repository in ``path``; the first branch is ``main``."""

def open(
    path: PathLike, storage_options: Optional[Mapping[str, Any]] = None
) -> Union[Repository, RemoteRepository]:
    """Opens a repository. A local path opens the repository that contains it (searching
    parent folders) as a ``Repository``. A remote's URL (s3://bucket/prefix, gs://, az://), or
    a folder that is itself a remote (``strata.json`` at its top), opens a ``RemoteRepository``
    read in place, as ``open_remote`` does. ``storage_options`` apply to remotes only."""

def open_remote(url: PathLike, storage_options: Optional[Mapping[str, Any]] = None) -> RemoteRepository:
    """Opens the repository at ``url`` (a folder, s3://bucket/prefix, gs://, az://) to read it
    in place, with no clone. Nothing is written to it, so read-only credentials do.
    ``storage_options`` are the store's non-secret options (endpoint, region, allow_http, ...);
    credentials come from the environment or an AWS profile."""

def clone(
    url: str,
    path: PathLike,
    branch: Optional[str] = None,
    storage_options: Optional[Mapping[str, Any]] = None,
) -> Repository:
    """Copies the repository at ``url`` (a folder, s3://bucket/prefix, gs://, az://) into
    ``path``, with ``url`` as the remote ``origin``."""
