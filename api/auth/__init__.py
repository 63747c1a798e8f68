"""Authentication and authorization: the OAuth2 server, access tokens, the caller."""
