"""Serving the hub: granian, and the WSGI layers in front of Flask (access gate, rate limits, response cache)."""
