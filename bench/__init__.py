"""The project's benchmarks, run with `python -m bench` (`make bench`).

Every figure is measured against the PostgreSQL in DATABASE_URL, in scratch
databases next to it, never in the database itself. Figures go to the table
printed at the end and to bench/results.json; docs/BENCHMARKS.md reads them.
"""
