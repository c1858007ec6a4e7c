{#- Incremental strategy `replace_files` (DuckDB, PostgreSQL): in one transaction, delete the
    rows of the partition's files and every row whose unique_key the new batch now owns, then
    insert the batch. The second condition follows silver when it moves an id from a later
    file to an earlier one loaded afterwards (an id belongs to the earliest file holding it), so
    fct_trips equals silver whatever order the months load in.
    dbt looks this macro up by name: get_incremental_<strategy>_sql. -#}
{% macro get_incremental_replace_files_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set dest_cols_csv = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error("replace_files needs a unique_key (a column or a list)") }}
    {%- endif -%}
    {%- set key = unique_key if unique_key is string else unique_key | join(', ') -%}
    {%- set files = partition_filenames() if partition_months() is not none
                    else 'select distinct filename from ' ~ source -%}
    delete from {{ target }}
    where filename in ({{ files }});

    {#- A second statement, not an OR: the key lookup then probes only the rows left (the
        condition OR-ed with a subquery made DuckDB probe the month's own rows too: a 7M-row
        month's delete and insert took 9.4 s, now 8.1 s). #}
    delete from {{ target }}
    where ({{ key }}) in (select {{ key }} from {{ source }});

    insert into {{ target }} ({{ dest_cols_csv }})
    select {{ dest_cols_csv }} from {{ source }}
{%- endmacro %}

{#- BigQuery's incremental materialization takes only merge / insert_overwrite / microbatch:
    there fct_trips replaces the partition's files with one MERGE, atomic as one statement is:
    the new rows update the rows with their key (wherever they were) or go in, and the rows of the
    partition's files the new batch no longer holds are deleted (`when not matched by source`).
    dbt finds this macro first for BigQuery because dbt_project.yml puts this project before dbt
    in the `dbt` namespace's search order; models without `replace_partition_files` get dbt's. -#}
{% macro bigquery__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}
    {{ default__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) }}
    {%- if config.get('replace_partition_files') and partition_months() is not none %}
    when not matched by source and DBT_INTERNAL_DEST.filename in ({{ partition_filenames() }}) then delete
    {%- endif %}
{%- endmacro %}
