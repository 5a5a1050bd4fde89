"""The controlling report: KPIs over campaigns, activation, customers and the data itself.

``report.build_report`` reads the published warehouse only (the KPI marts of
``dbt_project/models/kpi/``, their history and their definitions, which the dbt yml states
and ``dim_kpi_definitions`` publishes) plus the export manifests, and writes one
self-contained HTML file: Vega-Lite charts (Altair specs) with the Vega, Vega-Lite and
vega-embed JavaScript inlined from ``vl-convert-python``, so it opens without any network.
Counts and rates only: no profile id and no value of a person reaches the page.
"""
