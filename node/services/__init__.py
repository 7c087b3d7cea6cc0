"""Use cases of a node, one transaction each.

Every change a use case makes to a ticket is recorded in the ticket's history
in the same transaction; callers see a domain error or a committed result,
never half of one.
"""
