{#- The 265 TLC taxi zones (the taxi_zone_lookup seed) with readable names. -#}
select
    cast(locationid as {{ dbt.type_int() }}) as location_id,
    cast(borough as {{ dbt.type_string() }}) as borough,
    cast(zone as {{ dbt.type_string() }}) as zone,
    cast(service_zone as {{ dbt.type_string() }}) as service_zone
from {{ ref('taxi_zone_lookup') }}
