"""Priority at registration: stop-trade first, more impact or urgency never served later,
flagship stores never served later than standard ones."""

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.priority import DEFAULT_MATRIX, PriorityMatrix
from node.domain.ticket import Level, Priority, Tier

levels = st.sampled_from(list(Level))
tiers = st.sampled_from(list(Tier))


def at_least_as_urgent(a: Priority, b: Priority) -> bool:
    """a is served no later than b (P1 first)."""
    return a <= b


@given(impact=levels, urgency=levels, tier=tiers)
def test_stop_trade_is_always_p1(impact: Level, urgency: Level, tier: Tier) -> None:
    assert DEFAULT_MATRIX.priority(impact, urgency, tier, stop_trade=True) is Priority.P1


@given(impact=levels, urgency=levels, tier=tiers, stop_trade=st.booleans())
def test_every_input_gets_a_priority(
    impact: Level, urgency: Level, tier: Tier, stop_trade: bool
) -> None:
    assert DEFAULT_MATRIX.priority(impact, urgency, tier, stop_trade) in set(Priority)


@settings(max_examples=200)
@given(impact=levels, urgency=levels, more_impact=levels, more_urgency=levels, tier=tiers)
def test_more_impact_or_urgency_never_lowers_priority(
    impact: Level, urgency: Level, more_impact: Level, more_urgency: Level, tier: Tier
) -> None:
    higher_impact = max(impact, more_impact)
    higher_urgency = max(urgency, more_urgency)
    base = DEFAULT_MATRIX.priority(impact, urgency, tier, stop_trade=False)
    raised = DEFAULT_MATRIX.priority(higher_impact, higher_urgency, tier, stop_trade=False)
    assert at_least_as_urgent(raised, base)


def test_priority_is_monotonic_in_each_input_separately() -> None:
    for tier, impact, urgency in itertools.product(Tier, Level, Level):
        here = DEFAULT_MATRIX.priority(impact, urgency, tier, stop_trade=False)
        if impact < Level.CRITICAL:
            up = DEFAULT_MATRIX.priority(Level(impact + 1), urgency, tier, stop_trade=False)
            assert at_least_as_urgent(up, here), (tier, impact, urgency)
        if urgency < Level.CRITICAL:
            up = DEFAULT_MATRIX.priority(impact, Level(urgency + 1), tier, stop_trade=False)
            assert at_least_as_urgent(up, here), (tier, impact, urgency)


@given(impact=levels, urgency=levels, stop_trade=st.booleans())
def test_a_flagship_store_is_never_served_later_than_a_standard_one(
    impact: Level, urgency: Level, stop_trade: bool
) -> None:
    flagship = DEFAULT_MATRIX.priority(impact, urgency, Tier.FLAGSHIP, stop_trade)
    standard = DEFAULT_MATRIX.priority(impact, urgency, Tier.STANDARD, stop_trade)
    assert at_least_as_urgent(flagship, standard)


def test_the_matrix_spans_the_whole_scale() -> None:
    """The worst case is P1 and the mildest is the lowest priority, for a standard store."""
    worst = DEFAULT_MATRIX.priority(Level.CRITICAL, Level.CRITICAL, Tier.STANDARD, False)
    mildest = DEFAULT_MATRIX.priority(Level.LOW, Level.LOW, Tier.STANDARD, False)
    assert worst is Priority.P1
    assert mildest is max(Priority)
    seen = {
        DEFAULT_MATRIX.priority(i, u, Tier.STANDARD, False)
        for i, u in itertools.product(Level, Level)
    }
    assert seen == set(Priority), "every priority is reachable from some impact and urgency"


def test_a_flagship_store_is_served_sooner_somewhere() -> None:
    """Being flagship must count for something, not only never hurt."""
    assert any(
        DEFAULT_MATRIX.priority(i, u, Tier.FLAGSHIP, False)
        < DEFAULT_MATRIX.priority(i, u, Tier.STANDARD, False)
        for i, u in itertools.product(Level, Level)
    )


@settings(max_examples=100)
@given(
    cells=st.lists(st.sampled_from(list(Priority)), min_size=16, max_size=16),
    impact=levels,
    urgency=levels,
)
def test_flagship_with_raising_off_is_the_same_as_standard(
    cells: list[Priority], impact: Level, urgency: Level
) -> None:
    pairs = list(itertools.product(Level, Level))
    matrix = PriorityMatrix(
        table=dict(zip(pairs, cells, strict=True)), flagship_raises_impact=False
    )
    assert matrix.priority(impact, urgency, Tier.FLAGSHIP, False) == matrix.priority(
        impact, urgency, Tier.STANDARD, False
    )
    assert (
        matrix.priority(impact, urgency, Tier.STANDARD, False)
        == cells[pairs.index((impact, urgency))]
    )
