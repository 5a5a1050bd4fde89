"""Per-file consent figures of a run's exports, checked independently of the exporter (not a test).

    .venv/bin/python benchmarks/export_consent_figures.py <data directory>

Prints, per segment export, each file's purpose, rows written and rows dropped by reason (from
the manifest), then re-checks the files against the published warehouse with its own SQL:
ad-audience rows whose hashes belong to no online_ads-consented identifier, and exported
e-mails that are not a value any source record of the profile holds. Both must be 0.
"""
import json
import sys
from pathlib import Path

import duckdb

home = Path(sys.argv[1])
con = duckdb.connect()
con.execute(f"ATTACH '{home}/warehouse/build.duckdb' AS b (READ_ONLY)")
con.execute(f"ATTACH '{home}/warehouse/published.duckdb' AS p (READ_ONLY)")
# every value a source record holds for a profile (raw, trimmed of whitespace)
con.execute("""CREATE TABLE given AS SELECT DISTINCT g.profile_id,
    regexp_replace(r.email, '^[\\s\\x{00A0}]+|[\\s\\x{00A0}]+$', '', 'g') AS email
    FROM p.main.fct_identity_graph g JOIN b.intermediate.int_identity__records r
    USING (source, record_id) WHERE r.email IS NOT NULL""")
# online_ads-consented digests, each platform's rules on the deliverable value
con.execute("""CREATE TABLE ok AS
  SELECT sha256(lower(trim(v.deliverable_value))) AS d FROM p.main.dim_profile_consent c
  JOIN p.main.dim_profile_contact_values v USING (profile_id, contact_point)
  WHERE c.channel='online_ads' AND c.is_contactable AND v.identifier_type='email'
  UNION SELECT sha256(contact_point) FROM p.main.dim_profile_consent
  WHERE channel='online_ads' AND is_contactable AND starts_with(contact_point,'+')
  UNION SELECT sha256(ltrim(contact_point,'+')) FROM p.main.dim_profile_consent
  WHERE channel='online_ads' AND is_contactable AND starts_with(contact_point,'+')""")
total_bad_ads = total_bad_mail = 0
for segment in sorted(p for p in (home / "exports").iterdir() if p.is_dir()):
    run = max((r for r in segment.iterdir() if not r.name.startswith(".")),
              key=lambda r: r.stat().st_mtime)
    manifest = json.loads((run / "manifest.json").read_text())
    print(f"== {segment.name}: candidates {manifest['candidates']}, members {manifest['rows']}")
    for f in manifest["files"]:
        print(f"   {f['name']:28} purpose={f.get('purpose')!s:10} rows={f['rows']:5} "
              f"dropped={f.get('dropped', {})}")
    for name, cols in (("google_customer_match.csv", ('"Email"', '"Phone"')),
                       ("meta_custom_audience.csv", ("email", "phone"))):
        if not (run / name).exists():
            continue
        rows, bad = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE ({cols[0]} IS NOT NULL AND {cols[0]} "
            f"NOT IN (SELECT d FROM ok)) OR ({cols[1]} IS NOT NULL AND {cols[1]} NOT IN "
            f"(SELECT d FROM ok))) FROM read_csv(?, all_varchar=true)",
            [str(run / name)]).fetchone()
        total_bad_ads += bad
        print(f"   {name}: {rows} rows, {bad} without online_ads consent")
    rows, bad = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM given g "
        "WHERE g.profile_id = m.profile_id AND g.email = m.email)) "
        "FROM read_csv(?, all_varchar=true) m WHERE m.email IS NOT NULL",
        [str(run / "members.csv")]).fetchone()
    total_bad_mail += bad
    print(f"   members.csv e-mails: {rows}, not a value any source record of the profile "
          f"holds: {bad}")
print(f"TOTAL ad rows without online_ads consent: {total_bad_ads}")
print(f"TOTAL exported e-mails no source record holds: {total_bad_mail}")
