"""The HTTP gateway: REST v2, dashboard and /metrics over the store's api surface.

Import ``pganalytics.gateway.app.create_app`` to build it; this package module imports
nothing so that ``pganalytics.gateway.tokens`` stays cheap for the CLI.
"""
