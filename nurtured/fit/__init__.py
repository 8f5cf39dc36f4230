"""Clean data and fit: company names made one, qualification rules, profile scoring glue.

``companies`` and ``rules`` are PURE (no I/O, no clock); ``settings`` holds their
config.toml sections; ``store`` (companies in the database), ``apply`` (fit and profile
points applied to leads) and ``commands`` (the CLI) do the I/O.
"""
