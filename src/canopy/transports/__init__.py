"""Links between zones: in-process now; streams, child processes and shared memory next."""
