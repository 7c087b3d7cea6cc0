from node.domain.ticket import TicketDraft
from tests.conftest import Api


def test_a_store_files_a_ticket_that_an_engineer_sees(api: Api) -> None:
    filed = api["anna"].create(TicketDraft(category="pos-down", title="POS does not work"))
    seen, _ = api["ivan"].list_tickets()
    assert [v.ticket.key for v in seen] == [filed.ticket.key]
