"""Storage: every SQL statement of the program, behind functions that take and return plain values
and frozen dataclasses.
"""
