"""The older layouts of the TLC's yellow Parquet files (2009 and 2010), and how a month in one of
them gets the columns of today's yellow contract.

The TLC publishes yellow 2009 and 2010 in two layouts of their own, with longitude/latitude
instead of taxi zones, vendor names instead of ids and payment types as words (see
``../shared/data/tlc/published-metadata/``). Before such a file is landed, one DuckDB pass
(:func:`in_contract_layout`) writes a copy with every published column as published (names and
values: bronze keeps the layout) *plus* the contract's columns derived from them:

| contract column | 2009 (``vendor_name, Trip_Pickup_DateTime, …``) | 2010 (``vendor_id, pickup_datetime, …``) |
|---|---|---|
| ``vendorid`` | ``vendor_name``: ``CMT`` 1, ``VTS`` 2 | ``vendor_id``, the same |
| ``tpep_pickup/dropoff_datetime`` | ``Trip_Pickup/Dropoff_DateTime`` (text or timestamp) | ``pickup/dropoff_datetime`` |
| ``pulocationid``/``dolocationid`` | ``Start_Lon/Lat``, ``End_Lon/Lat`` placed in a zone | ``pickup_/dropoff_longitude/latitude`` placed |
| ``pickup_longitude`` … ``dropoff_latitude`` | ``Start_Lon`` … ``End_Lat`` | as published |
| ``ratecodeid`` | ``Rate_Code`` (the same codes) | ``rate_code`` |
| ``store_and_fwd_flag`` | ``store_and_forward``: 1/Y → ``Y``, 0/N → ``N`` | the same mapping |
| ``payment_type`` | ``Payment_Type`` words: ``CASH`` 2, ``CREDIT`` 1, ``No Charge`` 3, ``Dispute`` 4 | ``CAS`` 2, ``CRD``/``Cre`` 1, ``NOC`` 3, ``DIS`` 4 |
| ``fare_amount``, ``extra``, ``tip_amount``, ``tolls_amount``, ``total_amount`` | ``Fare_Amt``, ``surcharge``, ``Tip_Amt``, ``Tolls_Amt``, ``Total_Amt`` | the same names; ``extra`` from ``surcharge`` |
| ``improvement_surcharge``, ``congestion_surcharge`` | NULL (not charged before 2015) | NULL |

**Vendors.** The TLC's data dictionary gives ids to Creative Mobile Technologies (1) and VeriFone
(2, ``VTS`` in these years). ``DDS`` (Digital Dispatch Systems) stopped before vendor ids were
published and has none: its trips get ``vendorid`` NULL and are counted as
``vendor_without_tlc_id``; any other name is NULL too and counted as ``unknown_vendor_names``.
**Payment words** are matched case-insensitively on their first three letters; any other word is
NULL and counted (``unknown_payment_words``); a number is kept as it is. Where the 2010 layout's
own column has the contract's name but other values (``payment_type``, ``store_and_fwd_flag``),
the published value stays in bronze as ``<name>_as_published``.

**Zones** come from :mod:`taxi_platform.sources.zones` (point in polygon on the TLC's zone shapes,
vectorised), placed a batch of DuckDB's rows at a time; a point with no usable coordinate gets
zone 264, one outside every zone 265 (the lookup's two unknown zones), and the counts go into the
bronze metadata.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from taxi_platform.schemas import YELLOW, TripSchema

if TYPE_CHECKING:
    from taxi_platform.files import FileContract

# vendor names with a TLC vendor id (the data dictionary's VendorID); DDS has none
VENDOR_IDS = {"CMT": 1, "VTS": 2}
VENDORS_WITHOUT_TLC_ID = ("DDS",)
# payment words (their first three letters, upper-cased) to the TLC's payment_type codes
PAYMENT_CODES = {"CRE": 1, "CRD": 1, "CAS": 2, "NOC": 3, "NO ": 3, "DIS": 4}
# pandas wrote its index into some 2010 files: kept in bronze as published, never reported as unknown
PANDAS_INDEX = "__index_level_0__"


@dataclass(frozen=True)
class Layout:
    """An older layout: its published columns (lower-cased, in file order) and the published
    columns each derived contract column comes from."""

    name: str
    columns: tuple[str, ...]
    vendor: str
    pickup: str
    dropoff: str
    pickup_point: tuple[str, str]  # (longitude, latitude)
    dropoff_point: tuple[str, str]
    rate_code: str
    flag: str
    payment: str
    amounts: dict  # contract amount column -> published column

    @property
    def kept(self) -> set[str]:
        """Bronze columns this layout brings beyond the contract's (reported as known)."""
        return {*self.columns, PANDAS_INDEX} | {f"{c}_as_published" for c in ("payment_type", "store_and_fwd_flag")}


LAYOUT_2009 = Layout(
    name="2009",
    columns=("vendor_name", "trip_pickup_datetime", "trip_dropoff_datetime", "passenger_count", "trip_distance",
             "start_lon", "start_lat", "rate_code", "store_and_forward", "end_lon", "end_lat", "payment_type",
             "fare_amt", "surcharge", "mta_tax", "tip_amt", "tolls_amt", "total_amt"),
    vendor="vendor_name", pickup="trip_pickup_datetime", dropoff="trip_dropoff_datetime",
    pickup_point=("start_lon", "start_lat"), dropoff_point=("end_lon", "end_lat"),
    rate_code="rate_code", flag="store_and_forward", payment="payment_type",
    amounts={"fare_amount": "fare_amt", "extra": "surcharge", "tip_amount": "tip_amt",
             "tolls_amount": "tolls_amt", "total_amount": "total_amt"},
)
LAYOUT_2010 = Layout(
    name="2010",
    columns=("vendor_id", "pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance",
             "pickup_longitude", "pickup_latitude", "rate_code", "store_and_fwd_flag", "dropoff_longitude",
             "dropoff_latitude", "payment_type", "fare_amount", "surcharge", "mta_tax", "tip_amount",
             "tolls_amount", "total_amount"),
    vendor="vendor_id", pickup="pickup_datetime", dropoff="dropoff_datetime",
    pickup_point=("pickup_longitude", "pickup_latitude"), dropoff_point=("dropoff_longitude", "dropoff_latitude"),
    rate_code="rate_code", flag="store_and_fwd_flag", payment="payment_type",
    amounts={"extra": "surcharge"},
)
LAYOUTS = (LAYOUT_2009, LAYOUT_2010)
BATCH_ROWS = 500_000  # rows mapped, placed and written at a time: a month is never whole in memory
_PLACING = "__placing_"  # prefix of the typed coordinates the zones are placed from (not written)


def layout_of(names: list[str], schema: TripSchema) -> Layout | None:
    """The older layout a file's columns are (matched by name, whatever the case and order), else
    None."""
    if schema is not YELLOW:
        return None
    got = {n.lower() for n in names} - {PANDAS_INDEX}
    return next((layout for layout in LAYOUTS if got == set(layout.columns)), None)


@dataclass(frozen=True)
class LayoutReport:
    """What mapping a month's older layout did (bronze metadata)."""

    layout: str
    rows: int
    pickups_in_a_zone: int
    pickups_unknown: int  # no usable coordinate (empty, 0/0)
    pickups_outside: int  # a real coordinate outside every zone
    dropoffs_in_a_zone: int
    dropoffs_unknown: int
    dropoffs_outside: int
    vendor_without_tlc_id: int
    unknown_vendor_names: int
    unknown_payment_words: int
    seconds: float

    def metadata(self) -> dict:
        """Bronze metadata of the month (numbers stay numbers: the UI plots them over partitions)."""
        return {"layout": self.layout, "share_of_pickups_placed": round(self.share_placed, 4),
                **{k: v for k, v in asdict(self).items() if k not in ("layout", "rows")}}

    @property
    def share_placed(self) -> float:
        return self.pickups_in_a_zone / self.rows if self.rows else 1.0

    def summary(self) -> str:
        """One line for the run log."""
        return (f"the {self.layout} yellow layout mapped onto the contract in {self.seconds:.1f}s: "
                f"{self.share_placed:.1%} of {self.rows:,} pickups placed in a taxi zone ({self.pickups_unknown:,} "
                f"without a usable coordinate -> zone 264, {self.pickups_outside:,} outside every zone -> 265), "
                f"{self.dropoffs_in_a_zone:,} drop-offs placed; {self.vendor_without_tlc_id:,} DDS trips have no "
                f"TLC vendor id, {self.unknown_vendor_names:,} unknown vendor names, "
                f"{self.unknown_payment_words:,} unknown payment words")


def _text(column: str) -> str:
    return f'upper(trim(CAST("{column}" AS VARCHAR)))'


def _case(value: str, mapping: dict) -> str:
    whens = " ".join(f"WHEN '{k}' THEN {v}" for k, v in mapping.items())
    return f"CASE {value} {whens} END"


def _derived(layout: Layout) -> dict[str, str]:
    """DuckDB expressions of the contract's columns over the layout's published columns."""
    payment = _text(layout.payment)
    flag = _text(layout.flag)
    number = f"TRY_CAST({payment} AS DOUBLE)"
    lon_lat = {"pickup_longitude": layout.pickup_point[0], "pickup_latitude": layout.pickup_point[1],
               "dropoff_longitude": layout.dropoff_point[0], "dropoff_latitude": layout.dropoff_point[1]}

    def coordinate(column: str) -> str:
        return f'TRY_CAST("{column}" AS DOUBLE)'

    derived = {
        "vendorid": _case(_text(layout.vendor), VENDOR_IDS),
        "tpep_pickup_datetime": f'"{layout.pickup}"',
        "tpep_dropoff_datetime": f'"{layout.dropoff}"',
        "ratecodeid": f'"{layout.rate_code}"',
        "store_and_fwd_flag": (f"CASE WHEN {flag} IN ('Y', '1', '1.0') THEN 'Y' "
                               f"WHEN {flag} IN ('N', '0', '0.0') THEN 'N' END"),
        "payment_type": f"coalesce(CAST({number} AS VARCHAR), {_case(f'left({payment}, 3)', PAYMENT_CODES)}::VARCHAR)",
        # placed in Python (see in_contract_layout), from these typed coordinates
        **{f"{_PLACING}{end}_{axis}": coordinate(column)
           for end, point in (("pu", layout.pickup_point), ("do", layout.dropoff_point))
           for axis, column in zip(("lon", "lat"), point, strict=True)},
        "improvement_surcharge": "CAST(NULL AS DOUBLE)",
        "congestion_surcharge": "CAST(NULL AS DOUBLE)",
        **{contract: f'"{published}"' for contract, published in layout.amounts.items()},
        **{contract: f'"{published}"' for contract, published in lon_lat.items() if contract != published},
    }
    return derived


def _select(layout: Layout, names: list[str]) -> str:
    """Every published column as published (one the contract redefines renamed
    ``<name>_as_published``), then the contract's columns derived from them (the expressions
    read the file's own columns, not the names given here)."""
    derived = _derived(layout)
    published = [f'"{n}" AS "{n.lower()}_as_published"' if n.lower() in derived else f'"{n}" AS "{n.lower()}"'
                 for n in names]
    return ", ".join([*published, *(f'{e} AS "{n}"' for n, e in derived.items())])


def _coordinates(array) -> np.ndarray:
    """A batch's coordinate column as float64 with NaN for nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.fill_null(pc.cast(array, pa.float64()), float("nan")).to_numpy(zero_copy_only=False)


@contextlib.contextmanager
def in_contract_layout(path: str | Path, names: list[str], layout: Layout) -> Iterator[tuple[Path, LayoutReport]]:
    """A temporary Parquet copy of the older-layout file at ``path`` with the contract's columns
    derived beside the published ones (see the module docstring), and what the mapping did;
    removed when the block ends. Streamed: DuckDB maps a batch of rows at a time, the zones of
    each batch are placed at once (numpy, shapely), and the batch is written as a row group."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from taxi_platform.sources import zones

    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="taxi-layout-"))
    out = folder / Path(path).name
    try:
        with duckdb.connect() as conn:
            # One thread: the batches are consumed by one Python loop anyway, and with two DuckDB
            # buffered a 14M-row month to 1.5 GB peak (one: 0.84 GB, no slower; benchmarks/RESULTS.md).
            conn.execute("SET threads = 1")
            reader = conn.sql(f"SELECT {_select(layout, names)} FROM read_parquet(?)",
                              params=[str(path)]).to_arrow_reader(BATCH_ROWS)
            writer = None
            try:
                for batch in reader:
                    keep = [n for n in batch.schema.names if not n.startswith(_PLACING)]
                    placed = {f"{end}locationid": pa.array(zones.place(
                        _coordinates(batch.column(f"{_PLACING}{end}_lon")),
                        _coordinates(batch.column(f"{_PLACING}{end}_lat"))), type=pa.int32())
                        for end in ("pu", "do")}
                    table = pa.table({**{n: batch.column(n) for n in keep}, **placed})
                    if writer is None:
                        writer = pq.ParquetWriter(out, table.schema, compression="zstd")
                    writer.write_table(table, row_group_size=BATCH_ROWS)
            finally:
                if writer is not None:
                    writer.close()
            vendor = _text(layout.vendor)
            payment = _text(f"{layout.payment}_as_published")
            known = ", ".join(f"'{v}'" for v in (*VENDOR_IDS, *VENDORS_WITHOUT_TLC_ID))
            unknown, outside = zones.UNKNOWN_ZONE, zones.OUTSIDE_ZONE
            counts = conn.execute(f"""
                SELECT count(*),
                       count(*) FILTER (pulocationid NOT IN ({unknown}, {outside})),
                       count(*) FILTER (pulocationid = {unknown}), count(*) FILTER (pulocationid = {outside}),
                       count(*) FILTER (dolocationid NOT IN ({unknown}, {outside})),
                       count(*) FILTER (dolocationid = {unknown}), count(*) FILTER (dolocationid = {outside}),
                       count(*) FILTER ({vendor} IN ({', '.join(f"'{v}'" for v in VENDORS_WITHOUT_TLC_ID)})),
                       count(*) FILTER ({vendor} IS NOT NULL AND {vendor} <> '' AND {vendor} NOT IN ({known})),
                       count(*) FILTER (payment_type IS NULL AND {payment} IS NOT NULL AND {payment} <> '')
                FROM read_parquet(?)""", [str(out)]).fetchone()
        yield out, LayoutReport(layout.name, *counts, seconds=round(time.monotonic() - started, 2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class MappedLayout:
    """A month's file that was in an older layout: which, and what mapping it did."""

    layout: Layout
    report: LayoutReport

    @property
    def kept(self) -> set[str]:
        return self.layout.kept


@contextlib.contextmanager
def mapped_onto_contract(path: str | Path, contract: FileContract, schema: TripSchema, *, filename: str,
                         partition: str) -> Iterator[tuple[Path, FileContract, MappedLayout | None]]:
    """The file to land for the month and its contract: ``path`` itself (nothing read), or for a
    file in an older layout (``contract.layout``) its temporary copy with the contract's columns
    (:func:`in_contract_layout`), that copy's contract and what the mapping did."""
    from taxi_platform.errors import BadInputError
    from taxi_platform.files import FileContract

    layout = next((each for each in LAYOUTS if each.name == contract.layout), None)
    if layout is None:
        yield Path(path), contract, None
        return
    with contextlib.ExitStack() as stack:
        try:
            out, report = stack.enter_context(in_contract_layout(path, [n for n, _ in contract.columns], layout))
        except Exception as exc:  # DuckDB's errors name the column, not the file
            raise BadInputError(
                f"{filename} (partition {partition}, the {layout.name} yellow layout) could not be mapped onto "
                f"the yellow contract: {str(exc).splitlines()[0]}. The file is probably truncated or malformed: "
                "re-materialize its raw and lake assets.", file=filename, partition=partition) from exc
        mapped = FileContract.of(out, schema, filename=filename, partition=partition)
        yield out, dataclasses.replace(mapped, derived=True), MappedLayout(layout, report)


@contextlib.contextmanager
def contract_layout_of(path: str | Path, schema: TripSchema, *, filename: str,
                       partition: str) -> Iterator[tuple[Path, MappedLayout | None]]:
    """:func:`mapped_onto_contract` for a file whose contract is not known yet (the benchmarks)."""
    from taxi_platform.files import FileContract

    contract = FileContract.of(path, schema, filename=filename, partition=partition)
    with mapped_onto_contract(path, contract, schema, filename=filename, partition=partition) as (out, _, mapped):
        yield out, mapped
