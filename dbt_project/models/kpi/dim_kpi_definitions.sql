-- The definition of every KPI, as kpi/_kpi.yml states it, published next to the KPIs so the
-- report (and an analyst) reads them from the warehouse: the yml is the one place they are
-- written. Rows come from dbt's graph at run time: every model tagged kpi, its description,
-- each column's description (wide models) and each entry of meta.kpis (long models).
{% set rows = [] %}
{% if execute %}
    {% for node in graph.nodes.values()
           if node.resource_type == 'model' and 'kpi' in node.tags
              and node.name != this.identifier %}
        {% set meta = node.config.get('meta') or node.get('meta') or {} %}
        {% do rows.append((node.name, 'model', node.name, node.description)) %}
        {% for name, definition in (meta.get('kpis') or {}).items() %}
            {% do rows.append((node.name, 'kpi', name, definition)) %}
        {% endfor %}
        {% for column in node.columns.values() %}
            {% do rows.append((node.name, 'column', column.name, column.description)) %}
        {% endfor %}
    {% endfor %}
{% endif %}


select
    cast(model as varchar) as model,
    cast(kind as varchar) as kind,
    cast(name as varchar) as name,
    cast(definition as varchar) as definition
from (
    values
    {%- for model, kind, name, definition in rows %}
        ({%- for value in (model, kind, name, definition) -%}
            '{{ (value or "") | trim | replace("'", "''") }}'{{ ", " if not loop.last }}
        {%- endfor -%}){{ "," if not loop.last }}
    {%- else %}
        (null, null, null, null)
    {%- endfor %}
) as d(model, kind, name, definition)
where model is not null
