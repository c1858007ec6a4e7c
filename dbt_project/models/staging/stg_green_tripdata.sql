{#- The green trips with the common names every colour shares. -#}
select
    -- identifiers
    cast(unique_row_id as {{ dbt.type_string() }}) as trip_id,
    cast(filename as {{ dbt.type_string() }}) as filename,
    cast('Green' as {{ dbt.type_string() }}) as service_type,
    cast(vendorid as {{ dbt.type_int() }}) as vendor_id,
    cast(ratecodeid as {{ dbt.type_int() }}) as ratecode_id,
    cast(pulocationid as {{ dbt.type_int() }}) as pickup_location_id,
    cast(dolocationid as {{ dbt.type_int() }}) as dropoff_location_id,

    -- timestamps
    cast(lpep_pickup_datetime as {{ dbt.type_timestamp() }}) as pickup_datetime,
    cast(lpep_dropoff_datetime as {{ dbt.type_timestamp() }}) as dropoff_datetime,

    -- trip info
    cast(store_and_fwd_flag as {{ dbt.type_string() }}) as store_and_fwd_flag,
    cast(passenger_count as {{ dbt.type_int() }}) as passenger_count,
    cast(trip_distance as {{ type_double() }}) as trip_distance,
    cast(trip_type as {{ dbt.type_int() }}) as trip_type,

    -- payment info
    cast(fare_amount as {{ type_double() }}) as fare_amount,
    cast(extra as {{ type_double() }}) as extra,
    cast(mta_tax as {{ type_double() }}) as mta_tax,
    cast(tip_amount as {{ type_double() }}) as tip_amount,
    cast(tolls_amount as {{ type_double() }}) as tolls_amount,
    cast(ehail_fee as {{ type_double() }}) as ehail_fee,
    cast(improvement_surcharge as {{ type_double() }}) as improvement_surcharge,
    cast(total_amount as {{ type_double() }}) as total_amount,
    cast(congestion_surcharge as {{ type_double() }}) as congestion_surcharge,
    cast(null as {{ type_double() }}) as airport_fee,
    cast(cbd_congestion_fee as {{ type_double() }}) as cbd_congestion_fee,
    cast(payment_type as {{ dbt.type_int() }}) as payment_type
from {{ source('silver', 'green_tripdata') }}
