"""Column contracts of the published TLC files, one per cab colour, and the rules every backend
shares: the key columns of ``unique_row_id``, the amounts among them, the words of quarantine
reasons, the file names of a month.

The contract is what a file must hold and what each column becomes in silver (its type):

- the CSV mirror (``TAXI_SOURCE=mirror``) publishes exactly the colour's *required* columns, in
  order: its header must be exactly :attr:`TripSchema.header`;
- the TLC's Parquet files (``TAXI_SOURCE=tlc``) carry the required columns (matched by name,
  case-insensitively: ``Airport_fee`` is ``airport_fee``) plus, in some months, the *optional*
  ones (``airport_fee``, ``cbd_congestion_fee``), NULL in silver where a file lacks them. A column
  the contract does not know is kept in bronze and reported, never loaded into silver;
- yellow 2009 and 2010 are published in older layouts (coordinates, vendor names, payment words):
  taxi_platform/sources/layouts.py derives the contract's columns from them (zones placed from the
  coordinates, kept in the optional ``pickup_longitude`` … ``dropoff_latitude``).

The id contract (what is hashed into ``unique_row_id``) is written once, in
``taxi_platform/warehouse/port.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Silver column types, as portable SQL type names each backend maps to its own.
INTEGER, TIMESTAMP, DOUBLE, TEXT = "INTEGER", "TIMESTAMP", "DOUBLE", "TEXT"
# The words quarantine reasons use for each type, on every backend: "<column>: cannot read '<text>' as <WORD>".
REASON_TYPES = {INTEGER: "INTEGER", TIMESTAMP: "TIMESTAMP", DOUBLE: "DOUBLE", TEXT: "VARCHAR"}
# The amounts among the key columns: hashed rounded to two decimals (see the id contract).
KEY_AMOUNTS = ("fare_amount", "trip_distance")

# The two forms a month is published in: the CSV mirror's and the TLC's own.
CSV_GZ, PARQUET = ".csv.gz", ".parquet"
FORMATS = (CSV_GZ, PARQUET)


@dataclass(frozen=True)
class Column:
    name: str  # as written in the file's header
    type: str  # silver type: INTEGER, TIMESTAMP, DOUBLE or TEXT
    description: str = ""
    optional: bool = False  # not in every published file (never in the CSV mirror's)

    @property
    def sql_name(self) -> str:
        """Warehouse column name: the header name lower-cased."""
        return self.name.lower()


@dataclass(frozen=True)
class TripSchema:
    colour: str
    columns: tuple[Column, ...]  # every silver column, the file's required ones first, in file order
    pickup: str  # sql name of the pickup timestamp
    dropoff: str

    @property
    def table(self) -> str:
        return f"{self.colour}_tripdata"

    @property
    def header(self) -> list[str]:
        """The CSV mirror's header: the required columns, in order."""
        return [c.name for c in self.columns if not c.optional]

    @property
    def required(self) -> list[str]:
        """The sql names every published file must have."""
        return [c.sql_name for c in self.columns if not c.optional]

    @property
    def sql_names(self) -> list[str]:
        """Every column of bronze and silver (beyond filename and the id), in order."""
        return [c.sql_name for c in self.columns]

    @property
    def key_columns(self) -> list[str]:
        """The columns hashed into unique_row_id, in hashing order."""
        return [
            "vendorid",
            self.pickup,
            self.dropoff,
            "pulocationid",
            "dolocationid",
            "fare_amount",
            "trip_distance",
        ]

    def column(self, sql_name: str) -> Column:
        return next(c for c in self.columns if c.sql_name == sql_name)

    def filename(self, month: str, fmt: str = CSV_GZ) -> str:
        """The published file name of a month, e.g. ``yellow_tripdata_2019-01.csv.gz`` (``fmt``:
        ``.csv.gz`` from the mirror, ``.parquet`` from the TLC)."""
        return f"{self.colour}_tripdata_{month}{fmt}"

    def month_files(self, month: str) -> list[str]:
        """Every name the month's file can have: a month is one partition, whatever its source,
        so loading one of them replaces the rows of the others."""
        return [self.filename(month, fmt) for fmt in FORMATS]


def month_of_file(filename: str) -> str:
    """``yellow_tripdata_2019-01.csv.gz`` -> ``2019-01``."""
    return filename.split("_tripdata_", 1)[1][:7]


_VENDOR = Column("VendorID", INTEGER, "TPEP/LPEP provider: 1 Creative Mobile Technologies, 2 VeriFone")
_RATECODE = Column("RatecodeID", INTEGER, "Final rate code: 1 standard, 2 JFK, 3 Newark, 4 Nassau/Westchester, 5 negotiated, 6 group ride")
_STORE = Column("store_and_fwd_flag", TEXT, "Y when the trip was held in vehicle memory before sending")
_PU = Column("PULocationID", INTEGER, "TLC taxi zone where the meter was engaged")
_DO = Column("DOLocationID", INTEGER, "TLC taxi zone where the meter was disengaged")
_PASSENGERS = Column("passenger_count", INTEGER, "Passengers, as entered by the driver")
_DISTANCE = Column("trip_distance", DOUBLE, "Trip distance in miles reported by the taximeter")
_PAYMENT = Column("payment_type", INTEGER, "1 credit card, 2 cash, 3 no charge, 4 dispute, 5 unknown, 6 voided")
_MONEY = {
    name: Column(name, DOUBLE, text)
    for name, text in [
        ("fare_amount", "Time-and-distance fare calculated by the meter (USD)"),
        ("extra", "Miscellaneous extras and surcharges (USD)"),
        ("mta_tax", "MTA tax triggered by the metered rate (USD)"),
        ("tip_amount", "Tip; card tips only, cash tips are not included (USD)"),
        ("tolls_amount", "Tolls paid during the trip (USD)"),
        ("ehail_fee", "E-hail fee (USD), green only and mostly empty"),
        ("improvement_surcharge", "Improvement surcharge assessed at flag drop (USD)"),
        ("total_amount", "Total charged to passengers, cash tips excluded (USD)"),
        ("congestion_surcharge", "NYS congestion surcharge (USD)"),
    ]
}
_AIRPORT_FEE = Column("airport_fee", DOUBLE, "Airport pick-up fee at LaGuardia and JFK (USD); TLC files only "
                      "(spelled Airport_fee from 2023)", optional=True)
# Yellow 2009-2010 carry coordinates instead of zones (taxi_platform/sources/layouts.py): kept,
# NULL for every later month.
_COORDINATES = tuple(
    Column(name, DOUBLE, f"{what} (WGS84 degrees) as published in 2009-2010, when the zone was placed from "
           "it; NULL from 2011", optional=True)
    for name, what in [("pickup_longitude", "Pickup longitude"), ("pickup_latitude", "Pickup latitude"),
                       ("dropoff_longitude", "Dropoff longitude"), ("dropoff_latitude", "Dropoff latitude")])
_CBD_FEE = Column("cbd_congestion_fee", DOUBLE, "Manhattan congestion relief zone toll (USD), from 2025-01; "
                  "TLC files only", optional=True)

YELLOW = TripSchema(
    colour="yellow",
    pickup="tpep_pickup_datetime",
    dropoff="tpep_dropoff_datetime",
    columns=(
        _VENDOR,
        Column("tpep_pickup_datetime", TIMESTAMP, "When the meter was engaged"),
        Column("tpep_dropoff_datetime", TIMESTAMP, "When the meter was disengaged"),
        _PASSENGERS,
        _DISTANCE,
        _RATECODE,
        _STORE,
        _PU,
        _DO,
        _PAYMENT,
        _MONEY["fare_amount"],
        _MONEY["extra"],
        _MONEY["mta_tax"],
        _MONEY["tip_amount"],
        _MONEY["tolls_amount"],
        _MONEY["improvement_surcharge"],
        _MONEY["total_amount"],
        _MONEY["congestion_surcharge"],
        _AIRPORT_FEE,
        _CBD_FEE,
        *_COORDINATES,
    ),
)

GREEN = TripSchema(
    colour="green",
    pickup="lpep_pickup_datetime",
    dropoff="lpep_dropoff_datetime",
    columns=(
        _VENDOR,
        Column("lpep_pickup_datetime", TIMESTAMP, "When the meter was engaged"),
        Column("lpep_dropoff_datetime", TIMESTAMP, "When the meter was disengaged"),
        _STORE,
        _RATECODE,
        _PU,
        _DO,
        _PASSENGERS,
        _DISTANCE,
        _MONEY["fare_amount"],
        _MONEY["extra"],
        _MONEY["mta_tax"],
        _MONEY["tip_amount"],
        _MONEY["tolls_amount"],
        _MONEY["ehail_fee"],
        _MONEY["improvement_surcharge"],
        _MONEY["total_amount"],
        _PAYMENT,
        Column("trip_type", INTEGER, "1 street-hail, 2 dispatch"),
        _MONEY["congestion_surcharge"],
        _CBD_FEE,
    ),
)

SCHEMAS: dict[str, TripSchema] = {"yellow": YELLOW, "green": GREEN}
COLOURS: tuple[str, ...] = tuple(SCHEMAS)

# Columns the silver tables add to the file's own.
SILVER_EXTRA_COLUMNS = {
    "unique_row_id": "md5 of vendorid|pickup|dropoff|pulocationid|dolocationid|fare_amount|trip_distance",
    "filename": "the published file the row came from, e.g. yellow_tripdata_2019-01.csv.gz or .parquet",
}
