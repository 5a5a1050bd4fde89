"""Profile traits computed in plain Python and called from dbt Python models."""
