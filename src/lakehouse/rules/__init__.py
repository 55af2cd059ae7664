"""Declarative rules as pure DataFrame -> DataFrame functions: typed cast, cleaning, row checks."""
