"""`clearance demo`: demo personas and models, and the demo upstream; never on the request path."""
