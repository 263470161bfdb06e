"""How Clearance meets the network, shared by every HTTP surface: who the client is behind
trusted proxies (RFC 7239 and X-Forwarded-*), and how its servers are started."""
