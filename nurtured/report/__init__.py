"""The marketer's report: `nurtured report` (text, --json, --html FILE) and GET /report.

sql.py      raw aggregate SQL on SQLite and PostgreSQL (dialect differences, parameters)
queries.py  one GROUP BY statement per table: emails and rates, funnel, bounces, attribution
shape.py    rates, funnel, distributions and the text tables from those rows (pure)
charts.py   matplotlib figures rendered to inline SVG
page.py     the self-contained HTML page
build.py    the whole report, and SECTIONS: where other wings add their parts
command.py  the `nurtured report` command;  web.py  GET /report behind a bearer token
"""
