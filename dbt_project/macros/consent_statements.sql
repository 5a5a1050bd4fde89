{#- Consent statements declared per source in sources.yml (`consent:`, see ingest/roles.py),
    handed over by the runner as the var roles (its consent list). One select per statement, all
    with the columns of int_consent__events. -#}

{#- The contact point a statement about `channel` binds on the profile record `r`
    (var channel_contact_points, from core/vocabulary.py). -#}
{% macro channel_contact_point(channel, r) -%}
    case {{ channel }}
    {%- for name, points in var('channel_contact_points').items() %}
        when '{{ name }}' then coalesce(
            {%- for point in points -%}
                {{ "'postal'" if point == 'postal' else r ~ '.' ~ point }}{{ ", " if not loop.last }}
            {%- endfor -%}, null)
    {%- endfor %}
    end
{%- endmacro %}

{% macro consent_statement_select(st) -%}
    {%- set stated = st.opted_in + st.opted_out -%}
    select * from (
        select r.profile_id, st.channel,
        {%- if st.contact_point == 'whole_channel' %}
               '*' as contact_point,
        {%- elif st.without_contact_point == 'whole_channel' %}
               coalesce({{ channel_contact_point('st.channel', 'r') }}, '*') as contact_point,
        {%- else %}
               {{ channel_contact_point('st.channel', 'r') }} as contact_point,
        {%- endif %}
        {%- if st.opted_in and st.opted_out %}
               case when st.value in ({{ sql_strings(st.opted_in) }}) then 'opted_in'
                    else 'opted_out' end as status,
        {%- else %}
               '{{ "opted_in" if st.opted_in else "opted_out" }}' as status,
        {%- endif %}
               st.decided_at, '{{ st.source }}' as source, st.record_id, st.reason,
               {{ st.suppresses }} as suppresses,
        {%- if st.lifts_suppression is sameas true or st.lifts_suppression is sameas false %}
               {{ st.lifts_suppression }} as lifts_suppression
        {%- else %}
               st.reason in ({{ sql_strings(st.lifts_suppression) }}) as lifts_suppression
        {%- endif %}
        from (
            select cast(s.{{ adapter.quote(st.record_key) }} as varchar) as record_id,
            {%- if st.channel == 'all' %}
                   ch.channel,
            {%- elif st.channel %}
                   '{{ st.channel }}' as channel,
            {%- else %}
                   {{ mapped(st.channel_column, st.channel_values) }} as channel,
            {%- endif %}
                   {{ folded(st.column) }} as value,
                   {{ source_record_time(st.timestamp, 's') }} as decided_at,
            {%- if st.reason_column %}
                   {{ mapped(st.reason_column, st.reason_values) }} as reason
            {%- else %}
                   '{{ st.reason | replace("'", "''") }}' as reason
            {%- endif %}
            from ({{ current_source_rows(st.source, st.record_key, st.timestamp) }}) as s
            {%- if st.channel == 'all' %}
            cross join {{ channel_rows('ch') }}
            {%- endif %}
        ) as st
        join records as r on r.source = '{{ st.source }}' and r.record_id = st.record_id
        where st.value in ({{ sql_strings(stated) }})
    )
    {%- if st.contact_point != 'whole_channel' and st.without_contact_point == 'skip' %}
    where contact_point is not null
    {%- endif %}
{%- endmacro %}
