"""The list endpoints' sort/filter/pagination/columns rules (management/listing.py), pure."""
import pytest

from amqp_broker.management.listing import ListingError, apply

EXCHANGES = [{"name": n, "type": t, "stats": {"n": i}} for i, (n, t) in enumerate(
    [("", "direct"), ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.headers", "headers"),
     ("amq.match", "headers"), ("amq.rabbitmq.trace", "topic"), ("amq.topic", "topic")])]


def names(items):
    return [i["name"] for i in items]


def test_no_parameters_keeps_the_list():
    assert apply({}, EXCHANGES) == EXCHANGES


def test_sort_by_field_and_reverse():
    out = apply({"sort": "type", "sort_reverse": "true", "columns": "name"}, EXCHANGES)
    assert names(out)[:2] == ["amq.topic", "amq.rabbitmq.trace"] or names(out)[:2] == ["amq.rabbitmq.trace", "amq.topic"]
    assert set(out[0]) == {"name"}


def test_sort_by_dotted_path():
    out = apply({"sort": "stats.n", "sort_reverse": "true"}, EXCHANGES)
    assert names(out)[0] == "amq.topic"


def test_columns_keep_nested_and_drop_unknown():
    out = apply({"columns": "name,stats.n,nosuch.x"}, EXCHANGES[:1])
    assert out == [{"name": "", "stats": {"n": 0}}]


def test_pagination_as_rabbitmq():
    body = apply({"page": "1", "page_size": "3", "name": "amq", "sort": "name", "sort_reverse": "true",
                  "columns": "name,type"}, EXCHANGES)
    assert body == {"filtered_count": 6, "item_count": 3, "page": 1, "page_count": 2, "page_size": 3,
                    "total_count": 7, "items": [{"name": "amq.topic", "type": "topic"},
                                                {"name": "amq.rabbitmq.trace", "type": "topic"},
                                                {"name": "amq.match", "type": "headers"}]}


def test_name_filter_is_case_insensitive_substring_or_regex():
    assert names(apply({"page": "1", "name": "AMQ.D"}, EXCHANGES)["items"]) == ["amq.direct"]
    body = apply({"page": "1", "name": "^amq.(d|f)", "use_regex": "true"}, EXCHANGES)
    assert names(body["items"]) == ["amq.direct", "amq.fanout"]


def test_name_filter_needs_a_page():
    assert len(apply({"name": "amq.d"}, EXCHANGES)) == 7


@pytest.mark.parametrize("query, error, reason", [
    ({"page": "5"}, "page_out_of_range", "Page out of range, page: 5 page size: 100, len: 7"),
    ({"page": "0"}, "invalid_pagination_parameters", "Invalid pagination parameters: page number 0, page size undefined"),
    ({"page": "1", "page_size": "600"}, "invalid_pagination_parameters",
     "Invalid pagination parameters: page number 1, page size 600"),
    ({"page": "x"}, "bad_request", "Pagination parameters are invalid"),
    ({"page": "1", "name": "(", "use_regex": "true"}, "bad_request", "Pagination parameters are invalid"),
])
def test_bad_parameters(query, error, reason):
    with pytest.raises(ListingError) as info:
        apply(query, EXCHANGES)
    assert (info.value.error, info.value.reason) == (error, reason)


def test_first_page_of_nothing_is_not_out_of_range():
    assert apply({"page": "1", "page_size": "2"}, []) == {
        "filtered_count": 0, "item_count": 0, "items": [], "page": 1, "page_count": 0, "page_size": 2, "total_count": 0}
