{#- Monthly revenue per pickup zone and service type, recomputed over the whole of fct_trips
    on every run: a trip counts in the month of its pickup, whichever file brought it, so the
    mart never depends on the order months were loaded in. Amounts are summed to the cent and
    averages rounded to 6 decimals (macros/types.sql: round_to), so every run gives the same
    values to the last bit. -#}
select
    pickup_zone as revenue_zone,
    cast({{ dbt.date_trunc('month', 'pickup_datetime') }} as date) as revenue_month,
    service_type,
    {{ round_to('sum(fare_amount)', 2) }} as revenue_monthly_fare,
    {{ round_to('sum(extra)', 2) }} as revenue_monthly_extra,
    {{ round_to('sum(mta_tax)', 2) }} as revenue_monthly_mta_tax,
    {{ round_to('sum(tip_amount)', 2) }} as revenue_monthly_tip_amount,
    {{ round_to('sum(tolls_amount)', 2) }} as revenue_monthly_tolls_amount,
    {{ round_to('sum(ehail_fee)', 2) }} as revenue_monthly_ehail_fee,
    {{ round_to('sum(improvement_surcharge)', 2) }} as revenue_monthly_improvement_surcharge,
    {{ round_to('sum(total_amount)', 2) }} as revenue_monthly_total_amount,
    {{ round_to('sum(cbd_congestion_fee)', 2) }} as revenue_monthly_cbd_congestion_fee,
    count(trip_id) as total_monthly_trips,
    {#- averages as 8-byte floats: avg() of an integer is NUMERIC on PostgreSQL, DOUBLE on DuckDB -#}
    cast({{ round_to('avg(passenger_count)', 6) }} as {{ type_double() }}) as avg_monthly_passenger_count,
    cast({{ round_to('avg(trip_distance)', 6) }} as {{ type_double() }}) as avg_monthly_trip_distance
from {{ ref('fct_trips') }}
group by 1, 2, 3
