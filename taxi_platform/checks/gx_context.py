"""Opening the committed Great Expectations context (``gx/``) against the configured warehouse.

The context in ``gx/`` is environment-free: its one SQL data source reads its connection
string from ``TAXI_GX_WAREHOUSE_URL``, and the validation results and the Data Docs site go to
folders named by ``TAXI_GX_RESULTS_DIR`` and ``TAXI_GX_DATA_DOCS_DIR``. :func:`open_context`
sets those three from the warehouse resource and the settings, so nothing in ``gx/`` changes
between machines or backends.

**The backend answers for itself**: each warehouse resource's ``gx_url()`` is the SQLAlchemy URL
GX connects with (DuckDB: read-only, through ``warehouse/duckdb/gx.py``; PostgreSQL: psycopg2 with
the resource's DSN or the PG* variables; BigQuery: ``warehouse/bigquery/gx.py``). The suites,
the checkpoints and the asset checks are the same everywhere, because validations are plain SQL
that GX generates for the dialect (pushed down: the batch is ``WHERE filename = '<the month's
file>'`` or ``WHERE load_id = ...`` on the table, nothing is pulled into pandas; the mart
reconciliation is one SQL query written in the SQL every warehouse speaks).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from taxi_platform.settings import Settings
from taxi_platform.warehouse import WarehouseResource

if TYPE_CHECKING:
    from great_expectations.data_context import FileDataContext

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the repository: gx/ lives here
GX_DIR = PROJECT_ROOT / "gx"

DATASOURCE = "taxi_warehouse"  # the one SQL data source in gx/great_expectations.yml
DATA_DOCS_SITE = "local_site"

URL_VAR = "TAXI_GX_WAREHOUSE_URL"
RESULTS_VAR = "TAXI_GX_RESULTS_DIR"
DATA_DOCS_VAR = "TAXI_GX_DATA_DOCS_DIR"


def data_docs_dir(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).data_dir / "gx_data_docs"


def served_url(url: str | None, settings: Settings | None = None) -> str | None:
    """A Data Docs page's ``file://`` URL as TAXI_DATA_DOCS_URL serves it (``taxi-platform docs``):
    a browser follows an http link from the Dagster UI, never a file:// one."""
    settings = settings or Settings.from_env()
    root = data_docs_dir(settings).absolute().as_uri()
    if url and url.startswith(root + "/"):
        return settings.data_docs_url + url[len(root):]
    return url


def served_page(url: str | None, settings: Settings | None = None) -> str | None:
    """The page of the site (``validations/….html``) a :func:`served_url` points at, else None."""
    served = (settings or Settings.from_env()).data_docs_url + "/"
    return url[len(served):] if url and url.startswith(served) else None


def results_dir(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).data_dir / "gx_validations"


def set_context_env(url: str, settings: Settings | None = None) -> None:
    """Point the variables gx/great_expectations.yml refers to at this environment."""
    settings = settings or Settings.from_env()
    os.environ[URL_VAR] = url
    os.environ[RESULTS_VAR] = str(results_dir(settings))
    os.environ[DATA_DOCS_VAR] = str(data_docs_dir(settings))
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _share_compiled_templates() -> None:
    """Data Docs compile each template once per process, not once per page.

    GX renders every page with a new jinja ``Environment`` (``DefaultJinjaView.__init__``), so
    each validation compiled the same templates again: two thirds of its Data Docs time (about
    0.1 s a validation). One in-memory bytecode cache, jinja's own hook for this, is given to
    every such environment; a template is looked up by its name, file and source checksum, and
    the compiled code resolves filters against the environment that runs it."""
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2.bccache import Bucket, BytecodeCache

    if getattr(DefaultJinjaView, "_taxi_compiled_once", False):
        return

    class CompiledTemplates(BytecodeCache):
        def __init__(self) -> None:
            self.code: dict[tuple[str, str], object] = {}

        def get_bucket(self, environment, name, filename, source) -> Bucket:
            bucket = Bucket(environment, self.get_cache_key(name, filename), self.get_source_checksum(source))
            bucket.code = self.code.get((bucket.key, bucket.checksum))
            return bucket

        def set_bucket(self, bucket: Bucket) -> None:
            self.code[(bucket.key, bucket.checksum)] = bucket.code

    shared, init = CompiledTemplates(), DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.env.bytecode_cache = shared

    DefaultJinjaView.__init__ = __init__
    DefaultJinjaView._taxi_compiled_once = True


def _batches_named_not_listed() -> None:
    """A batch whose parameters name every column its asset is partitioned on is read as named.

    GX lists every batch of a table before it reads one (``SELECT DISTINCT filename, load_id``
    over all of it) and keeps the one asked for: a scan of the whole table on every validation,
    growing with the history (0.9 s for one 7M-row month in PostgreSQL's landed table, years of
    months in minutes; on BigQuery, bytes billed). Our batch parameters always name the batch,
    so the listing is skipped; a batch with no rows is then an empty batch, not GX's
    NoAvailableBatchesError (gx_runner.py reports it as the missing file it is)."""
    from great_expectations.datasource.fluent import sql_datasource

    asset_class = sql_datasource._SQLAsset
    if getattr(asset_class, "_taxi_batches_named", False):
        return
    listed = asset_class._fully_specified_batch_requests

    def _fully_specified_batch_requests(self, batch_request):
        if batch_request.partitioner is not None:
            names = self.get_partitioner_implementation(batch_request.partitioner).param_names
            options = batch_request.options or {}
            if names and all(options.get(name) is not None for name in names):
                return [batch_request], sql_datasource._NoMatchDiagnostics(candidate_count=1, offending_param=None)
        return listed(self, batch_request)

    asset_class._fully_specified_batch_requests = _fully_specified_batch_requests
    asset_class._taxi_batches_named = True


def _freeze_what_gx_imported() -> None:
    """Importing GX (on a run's first validation) doubles the process's objects, to about half
    a million with the code location's. The next full pass of the garbage collector would scan
    them all (0.25 s, in the middle of a step) and every later one again: they live as long as
    the process, so they are moved out of its reach, once (see taxi_platform/definitions.py)."""
    global _gx_frozen
    if not _gx_frozen:
        _gx_frozen = True
        gc.freeze()


_gx_frozen = False


def load_context(project_root: Path = PROJECT_ROOT) -> FileDataContext:
    import great_expectations as gx

    _share_compiled_templates()
    _batches_named_not_listed()
    _freeze_what_gx_imported()
    if not (project_root / "gx" / "great_expectations.yml").is_file():
        raise FileNotFoundError(
            f"no Great Expectations context at {project_root / 'gx'}: run `make gx-suites`")
    return gx.get_context(mode="file", project_root_dir=str(project_root))


def close_context(context: FileDataContext) -> None:
    """Close every connection GX opened: DuckDB allows one process on the file at a time, so
    the next step must find it free. The data source then makes new ones on its next use."""
    for datasource in context.data_sources.all().values():
        engine = getattr(datasource, "_execution_engine", None)
        if engine is not None:
            engine.close()
            datasource._execution_engine = None  # closed: not to be handed out again
        sa_engine = getattr(datasource, "_engine", None)
        if sa_engine is not None:
            sa_engine.dispose()


# The contexts this process has loaded, by what they were loaded for (see open_context).
_contexts: dict[tuple[str, ...], FileDataContext] = {}


def _context_for(project_root: Path) -> FileDataContext:
    """The gx/ context for the environment :func:`set_context_env` has just set, loaded once per
    process and environment: loading reads and validates gx/ (the suites, checkpoints and
    stores), about 0.17 s, which every validation paid again for the same context. What a
    validation changes (results, Data Docs) goes to the folders named when it was loaded, so the
    environment those come from is the key."""
    key = (str(project_root), *(os.environ.get(name, "") for name in (URL_VAR, RESULTS_VAR, DATA_DOCS_VAR)))
    if key not in _contexts:
        _contexts[key] = load_context(project_root)
    return _contexts[key]


@contextlib.contextmanager
def open_context(warehouse: WarehouseResource, settings: Settings | None = None,
                 project_root: Path = PROJECT_ROOT) -> Iterator[FileDataContext]:
    """The gx/ context connected to ``warehouse``; its connections are closed on exit. GX opens
    the warehouse its own way, so a :meth:`~WarehouseResource.session` lets go of it meanwhile."""
    with warehouse.outside_session():
        set_context_env(warehouse.gx_url(), settings)
        context = _context_for(project_root)
        try:
            yield context
        finally:
            close_context(context)
