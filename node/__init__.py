"""One organisation's help-desk node: domain rules, storage, use cases and the gRPC API."""
