"""Pure domain logic: money, order states, refund allocation, reconciliation and settlement maths.

Imports no framework and performs no I/O.
"""
