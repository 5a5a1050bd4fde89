-- CRM export rows (one per customer and address version) with parsed opt-in flags.
select
    cast(crm_row_id as varchar) as crm_row_id,
    cast(customer_number as varchar) as customer_number,
    updated_at,
    {{ parse_flag('email_opt_in') }} as email_opt_in,
    {{ parse_flag('post_opt_in') }} as post_opt_in,
    {{ parse_flag('phone_opt_in') }} as phone_opt_in
from ({{ latest_per_key(source('raw', 'crm_customers'), 'crm_row_id', 'updated_at') }})
