{#- An 8-byte float on every target (dbt.type_float() is 4-byte FLOAT on DuckDB). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'taxi_platform')()) }}
{%- endmacro %}
{% macro default__type_double() -%}double precision{%- endmacro %}
{% macro bigquery__type_double() -%}float64{%- endmacro %}

{#- A float rounded to `digits` decimals, as an 8-byte float. A sum of 8-byte floats depends on
    the order the rows are added in, which a parallel aggregate does not fix: two runs of the mart
    differed in the last bits of ~800 of 1,340 rows (201.4 and 201.40000000000003). Sums of cents
    rounded to cents, and averages to 6 decimals, are the same on every run. -#}
{% macro round_to(expression, digits) -%}
    {{ return(adapter.dispatch('round_to', 'taxi_platform')(expression, digits)) }}
{%- endmacro %}
{% macro default__round_to(expression, digits) -%}round({{ expression }}, {{ digits }}){%- endmacro %}
{#- PostgreSQL rounds only numeric to a number of decimals. -#}
{% macro postgres__round_to(expression, digits) -%}
    cast(round(cast({{ expression }} as numeric), {{ digits }}) as double precision)
{%- endmacro %}
