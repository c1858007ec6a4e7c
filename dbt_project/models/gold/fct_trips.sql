{#- Every silver trip of both colours, with zone names and the payment description. A trip is
    (service_type, trip_id): silver keeps unique_row_id unique within a colour's table only.

    Partitioned by the month of the silver file (Dagster passes the month window as vars
    min_date/max_date): a run rebuilds exactly the rows whose filename is one of the window's
    files, deleting and inserting in one transaction (macros/replace_files_strategy.sql), so
    months load in any order and re-runs change nothing. Without the vars (a plain
    `dbt build`), every file in silver is rebuilt. BigQuery takes no custom strategy: there one
    MERGE on (service_type, trip_id) updates or inserts the window's rows and deletes the rows of
    the window's files it no longer holds, atomically (macros/replace_files_strategy.sql). -#}
{{ config(
    materialized='incremental',
    unique_key=['service_type', 'trip_id'],
    incremental_strategy=('merge' if target.type == 'bigquery' else 'replace_files'),
    on_schema_change='append_new_columns',
    tags=['partitioned'],
    replace_partition_files=true,
    cluster_by=(['filename'] if target.type == 'bigquery' else none),
) }}
{%- if flags.FULL_REFRESH and partition_months() is not none -%}
    {{ exceptions.raise_compiler_error(
        "fct_trips: --full-refresh with partition vars would keep only the partition's months; "
        "full-refresh without min_date/max_date to rebuild every month") }}
{%- endif %}

with trips as (
    select * from {{ ref('stg_yellow_tripdata') }} {{ partition_filter() }}
    union all
    select * from {{ ref('stg_green_tripdata') }} {{ partition_filter() }}
),

zones as (
    select location_id, borough, zone from {{ ref('dim_zones') }}
),

payment_types as (
    select payment_type, description from {{ ref('payment_type_lookup') }}
)

select
    trips.trip_id,
    trips.filename,
    trips.service_type,
    trips.vendor_id,
    trips.ratecode_id,
    trips.pickup_location_id,
    coalesce(pickup_zone.borough, 'Unknown') as pickup_borough,
    coalesce(pickup_zone.zone, 'Unknown') as pickup_zone,
    trips.dropoff_location_id,
    coalesce(dropoff_zone.borough, 'Unknown') as dropoff_borough,
    coalesce(dropoff_zone.zone, 'Unknown') as dropoff_zone,
    trips.pickup_datetime,
    trips.dropoff_datetime,
    {{ dbt.datediff('trips.pickup_datetime', 'trips.dropoff_datetime', 'second') }} / 60.0 as trip_duration_minutes,
    trips.store_and_fwd_flag,
    trips.passenger_count,
    trips.trip_distance,
    trips.trip_type,
    trips.fare_amount,
    trips.extra,
    trips.mta_tax,
    trips.tip_amount,
    trips.tolls_amount,
    trips.ehail_fee,
    trips.improvement_surcharge,
    trips.total_amount,
    trips.congestion_surcharge,
    trips.airport_fee,
    trips.cbd_congestion_fee,
    trips.payment_type,
    coalesce(payment_types.description, 'Unknown') as payment_type_description
from trips
left join zones as pickup_zone
    on trips.pickup_location_id = pickup_zone.location_id
left join zones as dropoff_zone
    on trips.dropoff_location_id = dropoff_zone.location_id
left join payment_types
    on trips.payment_type = payment_types.payment_type
