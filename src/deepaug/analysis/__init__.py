"""Analyses of trained encoders: CKA, alignment/uniformity, layer choice, summary and claims."""
