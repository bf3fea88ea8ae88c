"""Composition: drafts, feeds and snapshots, rendering, inlining, text, checks, and the assembled
email message.
"""
