"""nurtured: walks leads through email content streams until they are ready for sales."""

__version__ = "0.1.0"
