"""PostgreSQL adapter: the only package that speaks SQL. Driver errors become `Unavailable` here."""
