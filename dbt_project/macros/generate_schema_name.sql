{#- Models land in the schema named in their config (staging, gold, marts, seeds), not in
    "<target schema>_<custom schema>": the warehouse layout is the same on every target. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
