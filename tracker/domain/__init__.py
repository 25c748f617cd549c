"""Pure domain: notification models and the rules that turn deliveries into events.

Standard library and pydantic only: no I/O, no clock. A test asserts this.
"""
