"""Turn raw identity attributes into comparable canonical forms.

Matching quality depends more on normalisation than on the matcher: the same e-mail typed
with a plus-tag, a phone written five ways, "Müller"/"Mueller"/"Muller" must each collapse to
one value before rules or Splink see them.  One module per field; the nickname table is data
(``identity/data/nicknames.yml``); predicates comparing normalised values live in
:mod:`identity.similarity`.
"""

from identity.normalise.address import (
    normalise_city_value,
    normalise_house_number_value,
    normalise_postcode,
    normalise_postcode_value,
    normalise_street,
    split_street_value,
)
from identity.normalise.birth_date import (
    DATE_DTYPE,
    MIN_BIRTH_DATE,
    PLACEHOLDER_BIRTH_DATES,
    normalise_birth_date,
)
from identity.normalise.country import normalise_country_value
from identity.normalise.email import normalise_email, normalise_email_value
from identity.normalise.identifiers import normalise_code_value
from identity.normalise.names import (
    canonical_first_name,
    normalise_first_name,
    normalise_first_name_value,
    normalise_last_name,
    normalise_last_name_value,
)
from identity.normalise.phone import normalise_phone, normalise_phone_value, phone_national_digits
from identity.normalise.records import (
    IDENTITY_COLUMNS,
    INPUT_COLUMNS,
    as_normalised,
    coerce_input,
    normalise_records,
)
from identity.normalise.text import fold, map_distinct

__all__ = [
    "DATE_DTYPE",
    "IDENTITY_COLUMNS",
    "INPUT_COLUMNS",
    "MIN_BIRTH_DATE",
    "PLACEHOLDER_BIRTH_DATES",
    "as_normalised",
    "canonical_first_name",
    "coerce_input",
    "fold",
    "map_distinct",
    "normalise_birth_date",
    "normalise_city_value",
    "normalise_code_value",
    "normalise_country_value",
    "normalise_email",
    "normalise_email_value",
    "normalise_first_name",
    "normalise_first_name_value",
    "normalise_house_number_value",
    "normalise_last_name",
    "normalise_last_name_value",
    "normalise_phone",
    "normalise_phone_value",
    "normalise_postcode",
    "normalise_postcode_value",
    "normalise_records",
    "normalise_street",
    "phone_national_digits",
    "split_street_value",
]
