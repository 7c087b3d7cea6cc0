"""`make demo`: the help desk's story told by real processes on this machine."""
