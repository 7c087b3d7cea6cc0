"""The rules of a help desk as pure Python: tickets, workflow, roles, priority.

Nothing here reads a clock, a database or the network: the current instant is
passed in, and what a rule decides comes back as values (a list of changes, an
error naming the rule that refused).
"""
