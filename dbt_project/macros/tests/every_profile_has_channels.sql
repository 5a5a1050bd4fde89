{#- Generic test: every profile of `profiles` has at least one row for each of `channels`. -#}
{% test every_profile_has_channels(model, profiles, channels) %}
select p.profile_id, ch.channel
from {{ profiles }} as p
cross join (select unnest({{ channels }}) as channel) as ch
where not exists (
    select 1 from {{ model }} as m
    where m.profile_id = p.profile_id and m.channel = ch.channel
)
{% endtest %}
