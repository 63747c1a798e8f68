"""Partnerloop's HTTP API: FastAPI app, routers, auth and the OAuth2 server."""
