"""The edges of a node: e-mail intake, monitoring alerts, imports, the web portal,
outgoing webhooks. Each turns an outside protocol into calls of `node.services`.
"""
