"""A C2SP tlog-witness (server) and the protocol a log uses to reach witnesses."""
