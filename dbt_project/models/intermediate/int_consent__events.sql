-- Every explicit consent statement from every source, attached to its profile and contact
-- point (normalised email, E.164 phone, 'postal', or '*' for all contact points of a channel).
-- Which source states what is configuration: the `consent:` role of each source in
-- sources.yml (ingest/roles.py), one union branch per declared statement.
-- Statements stay attached to the record that made them, so a merge pools them and a split
-- hands each part back only its own. `reason` says what kind of statement it was (for the
-- consent log: its origin, e.g. preference_centre, web_form, call_centre). `suppresses`: an
-- opt-out also enters the suppression log; `lifts_suppression`: an opt-in lifts one.
{%- set statements = var('roles')['consent'] %}
with records as (
    select source, record_id, profile_id, email, phone
    from {{ ref('fct_identity_graph') }}
)

{%- if statements | length == 0 %}
select cast(null as varchar) as profile_id, cast(null as varchar) as channel,
       cast(null as varchar) as contact_point, cast(null as varchar) as status,
       cast(null as timestamp) as decided_at, cast(null as varchar) as source,
       cast(null as varchar) as record_id, cast(null as varchar) as reason,
       cast(null as boolean) as suppresses, cast(null as boolean) as lifts_suppression
where false
{%- else %}
{%- for st in statements %}
{{ consent_statement_select(st) }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- endif %}
