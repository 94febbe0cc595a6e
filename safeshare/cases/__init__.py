"""Reading cases: one reader for the gateway, its watches and the operators' commands."""
