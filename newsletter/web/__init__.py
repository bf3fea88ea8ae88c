"""The web app and the servers: unsubscribe, opt-in, preferences, webhooks, the archive site, the
editors' live preview.
"""
