"""Delivery: plan what is due, freeze editions, claim, send, settle; DKIM, transports, workers,
reports.
"""
