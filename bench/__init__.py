"""The benchmark suite (issue 5): ``scripts/bench`` or ``python3 -m bench``.

Each bench is a module run in a child process of its own (``python3 -m bench.send``,
...), so one bench's memory, database connections and event loop never colour the
next; the parent (``bench/__main__.py``) collects every child's figures, prints the
table and writes the JSON. Every figure is shown beside its ceiling measured in the same
run, or beside the issue's target, because absolute numbers on a shared machine drift.
"""
