"""The sales loop: handoff alerts, SLA clocks and the commands sales send back."""
