"""PURE scoring: behaviour points and their decay, profile points, and the explanation
of a score as the sum of its causes. No I/O, no clock: ``now`` is always passed in."""
