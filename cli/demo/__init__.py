"""`quantpipe demo` and `up --demo`: every pool driven through its public interfaces on the shipped data."""
