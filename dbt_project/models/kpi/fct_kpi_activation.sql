-- Activation KPIs per export run and segment, from the manifests the exports wrote
-- (exports/<segment>/<run>/manifest.json under var exports_dir; definitions: meta.kpis of
-- this model in kpi/_kpi.yml): candidates, dropped per suppression step, dropped per purpose
-- (the consent a file needs) and reason, written, joined and left. Only the exports of
-- earlier publications: this run's own come after it publishes, and a rebuild of the same run
-- sees what its first build saw. Counts only (a manifest's erasure list is not read).
{% set exports_dir = var('exports_dir', none) %}
{% set manifests = [] %}
{% if execute and exports_dir %}
    {% set found = run_query(
        "select file from glob('" ~ (exports_dir ~ '/*/*/manifest.json') | replace("'", "''")
        ~ "') where not regexp_matches(file, '/[.][^/]*/manifest[.]json$') order by file") %}
    {% set manifests = found.columns[0].values() | list %}
{% endif %}
{% set run_id = env_var("CDP_RUN_ID") | replace("'", "''") %}

with manifests as (
    {%- if manifests %}
    select
        segment,
        run_id as export_run_id,
        publication_run_id,
        timezone('UTC', cast(exported_at as timestamptz)) as exported_at,
        "rows" as written,
        candidates,
        steps,
        files
    from read_json(
        [{%- for file in manifests %}'{{ file | replace("'", "''") }}'{{ ", " if not loop.last }}{% endfor -%}],
        format = 'auto',
        columns = {segment: 'VARCHAR', run_id: 'VARCHAR', publication_run_id: 'VARCHAR',
                   exported_at: 'VARCHAR', "rows": 'BIGINT', candidates: 'BIGINT',
                   steps: 'JSON', files: 'JSON'})
    where coalesce(publication_run_id, '') <> '{{ run_id }}'
    {%- else %}
    select
        cast(null as varchar) as segment, cast(null as varchar) as export_run_id,
        cast(null as varchar) as publication_run_id, cast(null as timestamp) as exported_at,
        cast(null as bigint) as written, cast(null as bigint) as candidates,
        cast(null as json) as steps, cast(null as json) as files
    where false
    {%- endif %}
),

steps as (
    select m.*, unnest(from_json(m.steps, '[{"step": "VARCHAR", "dropped": "BIGINT"}]')) as s
    from manifests as m
),

files as (
    select m.*, unnest(from_json(m.files,
        '[{"name": "VARCHAR", "rows": "BIGINT", "purpose": "VARCHAR", "dropped": "MAP(VARCHAR, BIGINT)"}]'
    )) as f
    from manifests as m
),

purpose_drops as (
    -- a purpose's files (CSV and Parquet, or both ad audiences) drop the same rows: once
    select segment, export_run_id, publication_run_id, exported_at,
           f.purpose || '/' || d.key as dimension_value, max(d.value) as value
    from (select *, unnest(map_entries(f.dropped)) as d from files
          where f.purpose is not null and f.name not in ('joined.csv', 'left.csv'))
    group by all
),

kpis as (
    select segment, export_run_id, publication_run_id, exported_at,
           'candidates' as kpi, 'all' as dimension, 'all' as dimension_value,
           cast(candidates as double) as value
    from manifests
    union all
    select segment, export_run_id, publication_run_id, exported_at, 'written', 'all', 'all',
           written
    from manifests
    union all
    select segment, export_run_id, publication_run_id, exported_at, 'dropped_by_step', 'step',
           s.step, s.dropped
    from steps
    union all
    select segment, export_run_id, publication_run_id, exported_at, 'dropped_by_purpose',
           'purpose/reason', dimension_value, value
    from purpose_drops
    union all
    select segment, export_run_id, publication_run_id, exported_at,
           case f.name when 'joined.csv' then 'joined' else 'left' end, 'all', 'all', f.rows
    from files
    where f.name in ('joined.csv', 'left.csv')
)

select
    cast(segment as varchar) as segment,
    cast(export_run_id as varchar) as export_run_id,
    cast(publication_run_id as varchar) as publication_run_id,
    cast(exported_at as timestamp) as exported_at,
    cast(kpi as varchar) as kpi,
    cast(dimension as varchar) as dimension,
    cast(dimension_value as varchar) as dimension_value,
    cast(value as double) as value
from kpis
