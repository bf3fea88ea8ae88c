"""The audience and the return path: subscribers, tokens, consent, bounces, complaints,
suppression.
"""
