"""Lead data as a whole: suppression, merging duplicates, export and erasure, CSV import."""
