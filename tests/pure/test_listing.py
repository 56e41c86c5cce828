"""Listed pages as item bytes (core/listing.py): volatile values blanked wherever
they occur, escaped quotes respected; items without an id skipped and counted. Pure."""

from __future__ import annotations

import random

import orjson
import pytest

from core.listing import blank_values, split_page


def test_blanks_every_value_of_the_named_keys_at_any_depth() -> None:
    page = orjson.dumps({"asset_preview_url": "https://s3/x?sig=1", "layers_info": [
        {"layer_name": "a", "layer_url": "https://s3/a?sig=2"}, {"layer_url": "https://s3/b?sig=3"}]})
    blanked = blank_values(page, ["asset_preview_url", "layer_url"])
    assert orjson.loads(blanked) == {"asset_preview_url": "", "layers_info": [
        {"layer_name": "a", "layer_url": ""}, {"layer_url": ""}]}


def test_an_escaped_quote_inside_a_value_does_not_end_it() -> None:
    page = orjson.dumps([{"layer_url": 'a"b\\', "keep": 'x\\"y'}, {"layer_url": '\\"'}])
    assert orjson.loads(blank_values(page, ["layer_url"])) == [{"layer_url": "", "keep": 'x\\"y'}, {"layer_url": ""}]


def test_other_keys_and_non_string_values_are_left_alone() -> None:
    page = b'{"layer_url":null,"my_layer_url":"kept","x":"layer_url"}'
    assert blank_values(page, ["layer_url"]) == page


def test_an_unterminated_value_is_an_error() -> None:
    with pytest.raises(ValueError):
        blank_values(b'{"layer_url":"abc', ["layer_url"])


def test_items_come_back_as_their_bytes_with_their_ids() -> None:
    orders = [{"order_id": "o-1", "n": [1, {"order_id": "inner"}]}, {"order_id": 7, "s": "é"}]
    body = orjson.dumps({"order_stats": {"a": 1}, "orders": orders, "next_page_token": "tok"})
    page = split_page(body, "orders", "order_id", ["next_page_token"])
    assert [(i, orjson.loads(raw)) for i, raw in page.items] == [("o-1", orders[0]), ("7", orders[1])]
    assert page.fields == {"next_page_token": "tok"} and page.skipped == 0


def test_ids_read_for_the_whole_page_match_the_item_by_item_way() -> None:
    plain = [{"order_id": f"o-{i}", "x": i} for i in range(3)] + [{"order_id": "é-ü", "x": 9}]
    page = split_page(orjson.dumps({"orders": plain}), "orders", "order_id")
    assert [i for i, _ in page.items] == ["o-0", "o-1", "o-2", "é-ü"] and page.skipped == 0
    # an escaped id, or one item of another shape, sends the whole page the item-by-item way
    escaped = [{"order_id": 'a"b', "x": 1}, {"order_id": "c\\d"}, *plain[:1]]
    assert [i for i, _ in split_page(orjson.dumps({"orders": escaped}), "orders", "order_id").items] == [
        'a"b', "c\\d", "o-0"]
    mixed = [*plain[:2], {"x": 1, "order_id": "late"}, {"order_id": ""}]
    page = split_page(orjson.dumps({"orders": mixed}), "orders", "order_id")
    assert [i for i, _ in page.items] == ["o-0", "o-1", "late"] and page.skipped == 1
    page = split_page(orjson.dumps({"orders": [*plain[:2], {"order_id": ""}]}), "orders", "order_id")
    assert [i for i, _ in page.items] == ["o-0", "o-1"] and page.skipped == 1


def test_entries_that_are_not_objects_or_have_no_id_are_skipped_and_counted() -> None:
    body = orjson.dumps({"orders": [3, {"x": 1}, {"order_id": ""}, {"order_id": True}, {"order_id": "ok"}]})
    page = split_page(body, "orders", "order_id", ["next_page_token"])
    assert [i for i, _ in page.items] == ["ok"] and page.skipped == 4
    assert page.fields == {"next_page_token": None}


@pytest.mark.parametrize("body", [b"[1]", b'{"orders": 3}', b"{bad", b""])
def test_a_page_of_the_wrong_shape_is_an_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        split_page(body, "orders", "order_id")


def test_a_missing_or_null_list_is_an_empty_page() -> None:
    assert split_page(b'{"orders": null}', "orders", "order_id").items == []
    assert split_page(b"{}", "orders", "order_id").items == []


def test_keys_with_a_common_suffix_and_without_one_are_all_blanked() -> None:
    page = b'{"image_url":"kept","layer_url":"x","asset_preview_url":"y","signature":"z","a":"1"}'
    assert blank_values(page, ["asset_preview_url", "layer_url"]) == \
        b'{"image_url":"kept","layer_url":"","asset_preview_url":"","signature":"z","a":"1"}'
    assert blank_values(page, ["signature", "layer_url", "a"]) == \
        b'{"image_url":"kept","layer_url":"","asset_preview_url":"y","signature":"","a":""}'
    assert blank_values(page, []) == page


def test_an_id_with_an_escape_or_not_first_is_still_read_exactly() -> None:
    body = b'{"orders":[{"order_id":"a\\\\b"},{"x":1,"order_id":"late"},{"order_id":"\\u00e9"}]}'
    page = split_page(body, "orders", "order_id")
    assert [i for i, _ in page.items] == ["a\\b", "late", "\u00e9"]


def _blank_reference(value: object, keys: set[str]) -> object:
    if isinstance(value, dict):
        return {k: "" if k in keys and isinstance(v, str) else _blank_reference(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_reference(v, keys) for v in value]
    return value


@pytest.mark.parametrize("alphabet", ["ab_url:/?=&", 'ab_url:"\\/'], ids=["no escapes", "escapes"])
def test_blanking_agrees_with_a_parse_on_random_documents(alphabet: str) -> None:
    rng = random.Random(alphabet)
    names = ["asset_preview_url", "layer_url", "my_layer_url", "url", "layer", "x"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))

    def value(depth: int) -> object:
        kind = rng.randrange(5 if depth < 3 else 3)
        if kind == 0:
            return text()
        if kind == 1:
            return rng.choice([None, 1, True, 2.5])
        if kind == 2:
            return rng.choice(names)
        if kind == 3:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice([*names, text()]): value(depth + 1) for _ in range(rng.randrange(5))}

    keys = ["asset_preview_url", "layer_url"]
    for _ in range(400):
        doc = {"orders": [value(1) for _ in range(rng.randrange(1, 4))]}
        blanked = blank_values(orjson.dumps(doc), keys)
        assert orjson.loads(blanked) == _blank_reference(doc, set(keys)), doc
