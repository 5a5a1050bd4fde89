-- Web-shop accounts, latest version per account id.
select
    cast(account_id as varchar) as account_id,
    created_at,
    updated_at,
    {{ parse_flag('newsletter_opt_in') }} as newsletter_opt_in
from ({{ latest_per_key(source('raw', 'shop_accounts'), 'account_id', 'updated_at') }})
