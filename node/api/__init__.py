"""The gRPC HelpDesk API of a node (hdx.helpdesk.v1).

`codec` is the only module that touches generated protobuf types; `servicer`
authenticates each call, runs the use case on a worker thread and maps domain
errors to status codes; `server` assembles the gRPC server with health checking
and reflection; `client` is the typed client the CLI, the demo and partners use.
"""
