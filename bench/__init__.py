"""hdx's benchmark suite: `python -m bench [NAME-PREFIX ...]` (or `make bench`).

Speed is measured here, never timed in tests. Every benchmark measures a figure
(`value`) and, in the same run, with the same client harness and concurrency, the
bare limit that figure stands on (`bare`): what the machine does when the product's
own work is taken away and only what it cannot avoid is left (a gRPC round trip, a
durable commit, ...). Shared, noisy machines make absolute figures drift from run
to run by a factor of two; the `ratio` value / bare drifts far less, so it is the
figure a goal is set on.

The suite prints a table and records each benchmark in `bench/results.json` as
`name -> {"value", "unit", "bare", "ratio"}`. The file is merged, not rewritten: a
run replaces the entries of the benchmarks it ran and keeps every other entry, so a
subset run (`python -m bench create_ticket_seq`) or a benchmark added later by
another module leaves the rest of the record alone.

Modules:
    create_ticket: tickets filed per second through the gRPC API of a real node.
    sla: the SLA engine over a node's SQLite database, in process.
    exchange: the exchange between two nodes, each in a process of its own.
    bare_server: the bare gRPC server ticket creation is compared with.
    chain_node, bare_exchange: the partner node of an exchange benchmark, and its
        bare limits, each served by a process of its own.
    load: the client harness (threads, each with its own channel) and the
        alternating measurement of a subject and its bare.
    processes: server subprocesses, the `hdx` CLI, clean-up.
    report: results, the table and results.json.
"""
