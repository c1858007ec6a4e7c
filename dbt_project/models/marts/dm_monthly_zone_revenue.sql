{#- Monthly revenue per pickup zone and service type, recomputed over the whole of fct_trips
    on every run: a trip counts in the month of its pickup, whichever file brought it, so the
    mart never depends on the order months were loaded in. -#}
select
    pickup_zone as revenue_zone,
    cast({{ dbt.date_trunc('month', 'pickup_datetime') }} as date) as revenue_month,
    service_type,
    sum(fare_amount) as revenue_monthly_fare,
    sum(extra) as revenue_monthly_extra,
    sum(mta_tax) as revenue_monthly_mta_tax,
    sum(tip_amount) as revenue_monthly_tip_amount,
    sum(tolls_amount) as revenue_monthly_tolls_amount,
    sum(ehail_fee) as revenue_monthly_ehail_fee,
    sum(improvement_surcharge) as revenue_monthly_improvement_surcharge,
    sum(total_amount) as revenue_monthly_total_amount,
    sum(cbd_congestion_fee) as revenue_monthly_cbd_congestion_fee,
    count(trip_id) as total_monthly_trips,
    {#- averages as 8-byte floats: avg() of an integer is NUMERIC on PostgreSQL, DOUBLE on DuckDB -#}
    cast(avg(passenger_count) as {{ type_double() }}) as avg_monthly_passenger_count,
    cast(avg(trip_distance) as {{ type_double() }}) as avg_monthly_trip_distance
from {{ ref('fct_trips') }}
group by 1, 2, 3
