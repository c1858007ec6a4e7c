{#- Partition helpers. The partition time window is [min_date, max_date) (YYYY-MM-DD, max
    exclusive): the vars min_date / max_date (`dbt build --vars ...` by hand) or, as Dagster
    passes it, the variables TAXI_DBT_MIN_DATE / TAXI_DBT_MAX_DATE (new vars on the command line
    would make dbt parse the whole project again on every month; a changed variable re-parses
    only the models that read it). A month's silver rows are those whose filename is that month's
    published file, <colour>_tripdata_YYYY-MM.csv.gz or .parquet, pickups from other months included. -#}

{% macro partition_months() -%}
    {#- The YYYY-MM keys of the months in [min_date, max_date); none when the vars are unset. -#}
    {%- set min_date = var('min_date', none) or env_var('TAXI_DBT_MIN_DATE', '') or none -%}
    {%- set max_date = var('max_date', none) or env_var('TAXI_DBT_MAX_DATE', '') or none -%}
    {%- if min_date is none and max_date is none -%}{{ return(none) }}{%- endif -%}
    {%- if min_date is none or max_date is none -%}
        {{ exceptions.raise_compiler_error("set both vars min_date and max_date (YYYY-MM-DD, max exclusive), or neither") }}
    {%- endif -%}
    {%- set first = modules.datetime.date.fromisoformat((min_date | string)[:10]) -%}
    {%- set stop = modules.datetime.date.fromisoformat((max_date | string)[:10]) -%}
    {%- set count = (stop.year * 12 + stop.month) - (first.year * 12 + first.month) + (1 if stop.day > 1 else 0) -%}
    {%- if first.day != 1 or count < 1 -%}
        {{ exceptions.raise_compiler_error("min_date must be the first day of a month before max_date; got " ~ min_date ~ " .. " ~ max_date) }}
    {%- endif -%}
    {%- set months = [] -%}
    {%- for i in range(count) -%}
        {%- set m = first.month - 1 + i -%}
        {%- do months.append("%04d-%02d" | format(first.year + m // 12, m % 12 + 1)) -%}
    {%- endfor -%}
    {{ return(months) }}
{%- endmacro %}

{% macro partition_filenames() -%}
    {#- SQL list of the partition's file names, both colours and either source (a month is one
        partition whatever its source): 'yellow_tripdata_2019-01.csv.gz', '..._2019-01.parquet', ... -#}
    {%- set names = [] -%}
    {%- for month in partition_months() or [] -%}
        {%- for colour in ['yellow', 'green'] -%}
            {%- for suffix in ['.csv.gz', '.parquet'] -%}
                {%- do names.append("'" ~ colour ~ "_tripdata_" ~ month ~ suffix ~ "'") -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(names | join(', ')) }}
{%- endmacro %}

{% macro partition_filter(column='filename') -%}
    {#- A WHERE clause keeping the partition's files; nothing when no partition is set. -#}
    {%- if partition_months() is not none -%}
    where {{ column }} in ({{ partition_filenames() }})
    {%- endif -%}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {#- dbt's own macro for a test's `where` config (dbt's documented way to template it), with
        one word of ours: __partition_files__ stands for the rows of the run's partition files
        (every row when no partition is set). So the tests of a partitioned model read the
        months the run built, not the whole table, which grows with every month loaded (each
        not_null and the grain's GROUP BY scanned all of fct_trips on every month's run). -#}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- if '__partition_files__' in where -%}
            {%- set files = ('filename in (' ~ partition_filenames() ~ ')') if partition_months() is not none else 'true' -%}
            {%- set where = where | replace('__partition_files__', files) -%}
        {%- endif -%}
        {%- set filtered -%}(select * from {{ relation }} where {{ where }}) dbt_subquery{%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
