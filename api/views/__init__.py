"""Response models shared by several routers, and the functions that fill them from the domain."""
