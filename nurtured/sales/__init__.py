"""The sales loop: the BANTFO gate, handoffs with an SLA, sales acting by reply or CLI,
and returns to nurturing."""
