{#- Models land in the schema named in their config (staging, gold, marts, seeds), not in
    "<target schema>_<custom schema>", so the layout matches the warehouse's bronze and silver:
    the schema itself on DuckDB and PostgreSQL, the dataset <GCP_DATASET>_<layer> on BigQuery. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}
    {%- else -%}{{ layer_schema(custom_schema_name | trim) }}{%- endif -%}
{%- endmacro %}

{% macro layer_schema(layer) -%}
    {%- if target.type == 'bigquery' -%}{{ env_var('GCP_DATASET', 'taxi') ~ '_' ~ layer }}
    {%- else -%}{{ layer }}{%- endif -%}
{%- endmacro %}
