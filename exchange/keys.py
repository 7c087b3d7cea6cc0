"""Key rotation: a new signing key, announced to the partners under the old one.

`rotate` (what `hdx keys rotate` runs, beside a serving node or not) goes in
three steps, each safe to be interrupted after:

1. the new key is written to `keys/` beside the others, not yet current;
2. in one transaction the key is recorded as ours and a `KeyAnnouncement` of it,
   signed by the current (old) key, is written to every partner's outbox on the
   partners' control link (wire link "");
3. `keys/current` is switched to the new key (an atomic rename).

So nothing is signed with the new key before its announcement is in every
outbox, ahead of what the new key will sign. Old keys stay on disk and in
`node_keys`, so what they signed keeps verifying, here and at the partners.
Interrupted before step 3, the old key simply goes on signing; a partner that
learnt of a key never used loses nothing.

A serving process does not restart: `follow_rotations` looks at `keys/current`
every `KEY_POLL_S` and swaps the exchange's identity when it names another key.
Until it has, the process signs with the old key, which partners still accept.
The TLS certificate (what partners pin) does not rotate with the signing key.
"""

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from exchange import identity
from exchange.service import ExchangeService

log = logging.getLogger("hdx.exchange")

KEY_POLL_S = 1.0
"""How often a serving process looks for a rotated key."""


@dataclass(frozen=True, slots=True)
class Rotated:
    """A rotation done: the key that signed before, the one that signs now, and how many
    partners the announcement was written for."""

    old_key_id: str
    new_key_id: str
    partners: int


def rotate(exchange: ExchangeService, data_dir: Path) -> Rotated:
    """Makes a new signing key current once every partner's outbox holds its announcement,
    signed by the key exchange signs with now."""
    old = exchange.identity.key_id
    public_key = identity.new_key(data_dir)
    told = exchange.announce_key(public_key)
    new = identity.key_id(public_key)
    identity.make_current(data_dir, new)
    exchange.identity = identity.load(data_dir, exchange.identity.node_id)
    return Rotated(old, new, told)


def follow(exchange: ExchangeService, data_dir: Path) -> bool:
    """Loads the node's identity again if `keys/current` names a key exchange does not sign
    with; True if it did."""
    if identity.current_key_id(data_dir) == exchange.identity.key_id:
        return False
    exchange.identity = identity.load(data_dir, exchange.identity.node_id)
    log.info("signing with key %s from now on", exchange.identity.key_id)
    return True


async def follow_rotations(exchange: ExchangeService, data_dir: Path) -> None:
    """`follow` every KEY_POLL_S, until cancelled."""
    while True:
        await asyncio.sleep(KEY_POLL_S)
        follow(exchange, data_dir)
