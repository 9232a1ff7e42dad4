"""The window x dimension study: grid runs (sweep), their records, the table and the report."""
