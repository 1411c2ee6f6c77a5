"""The vocabulary every room speaks: the episode state, the run context, events, trace records and the
environment settings. It imports only tools/."""
