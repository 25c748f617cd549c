"""What the tests and the benchmark share: a fleet's deliveries, a real `tracker serve` process,
a real PostgreSQL. tests/ and bench/ both import it and never each other; it is not in the wheel.
"""
