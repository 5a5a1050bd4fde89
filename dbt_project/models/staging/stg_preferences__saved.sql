-- Contact preferences saved in a preference centre (the `preferences` role in sources.yml,
-- ingest/roles.py), current version per record: a frequency cap (max_contacts per week or
-- month) and excluded product groups. `whole_form`: the row saved the whole form, so its
-- empty fields clear what an earlier save set.
{% call(src) role_union('preferences', 'saved_at',
    {'source': 'varchar', 'record_id': 'varchar', 'saved_at': 'timestamp',
     'max_contacts': 'integer', 'contact_period': 'varchar',
     'excluded_product_groups': 'varchar[]', 'whole_form': 'boolean'}) %}
        {{ 'try_cast(' ~ optional_column(src.max_contacts) ~ ' as integer)' if src.max_contacts else 'cast(null as integer)' }} as max_contacts,
        {{ 'nullif(' ~ mapped(src.period, src.period_values) ~ ", '')" if src.period else 'cast(null as varchar)' }} as contact_period,
        {%- if src.excluded_product_groups %}
        list_filter(
            list_transform(string_split(coalesce({{ optional_column(src.excluded_product_groups) }}, ''),
                                        '{{ src.separator | replace("'", "''") }}'), lambda g: trim(g)),
            lambda g: g <> '') as excluded_product_groups,
        {%- else %}
        []::varchar[] as excluded_product_groups,
        {%- endif %}
        {{ folded(src.whole_form.column) ~ ' in (' ~ sql_strings(src.whole_form['values']) ~ ')' if src.whole_form else 'false' }} as whole_form
{%- endcall %}
