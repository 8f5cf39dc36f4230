"""Split tests: a step's variants, which lead gets which, the winner rule and its report.

``spec`` (pure): the stream-file tables and the stable choice; ``stats`` (pure): the
two-proportion z-test; ``assign``: variants for a batch of jobs (the send path);
``counts`` and ``report``: sent, opened, clicked and replied per variant.
"""
