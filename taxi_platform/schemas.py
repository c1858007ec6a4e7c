"""Column contracts of the published TLC files, one per cab colour.

The contract is what the file must look like (header names and their order) and what each
column becomes in silver (its type). The key columns feed ``unique_row_id``; see
``unique_row_id`` in the warehouse backends for the exact text that is hashed.
"""

from __future__ import annotations

from dataclasses import dataclass

# Silver column types, as portable SQL type names each backend maps to its own.
INTEGER, TIMESTAMP, DOUBLE, TEXT = "INTEGER", "TIMESTAMP", "DOUBLE", "TEXT"


@dataclass(frozen=True)
class Column:
    name: str  # as written in the file's header
    type: str  # silver type: INTEGER, TIMESTAMP, DOUBLE or TEXT
    description: str = ""

    @property
    def sql_name(self) -> str:
        """Warehouse column name: the header name lower-cased."""
        return self.name.lower()


@dataclass(frozen=True)
class TripSchema:
    colour: str
    columns: tuple[Column, ...]
    pickup: str  # sql name of the pickup timestamp
    dropoff: str

    @property
    def table(self) -> str:
        return f"{self.colour}_tripdata"

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def sql_names(self) -> list[str]:
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

    def filename(self, month: str) -> str:
        """The published file name of a month, e.g. ``yellow_tripdata_2019-01.csv.gz``."""
        return f"{self.colour}_tripdata_{month}.csv.gz"


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
    ),
)

SCHEMAS: dict[str, TripSchema] = {"yellow": YELLOW, "green": GREEN}
COLOURS: tuple[str, ...] = tuple(SCHEMAS)

# Columns the silver tables add to the file's own.
SILVER_EXTRA_COLUMNS = {
    "unique_row_id": "md5 of vendorid|pickup|dropoff|pulocationid|dolocationid|fare_amount|trip_distance",
    "filename": "the published file the row came from, e.g. yellow_tripdata_2019-01.csv.gz",
}
