"""LicenceMetadata.parse: what may be written into an e-licence, checked field by field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustsvc.errors import InvalidInput
from trustsvc.pdf.metadata import MAX_FIELD, LicenceMetadata, from_xmp, to_xmp

GOOD = {"licence_type": "营业执照", "licence_number": "91110000MA01ABCD1X", "holder_name": "北京某某科技有限公司",
        "holder_id": "91110000MA01ABCD1X", "issuing_authority": "北京市市场监督管理局", "issue_date": "2024-05-01",
        "valid_from": "2024-05-01", "valid_until": "2044-04-30"}


def test_good_metadata_round_trips_through_xmp() -> None:
    meta = LicenceMetadata.parse(GOOD)
    assert meta.to_dict() == GOOD
    assert from_xmp(to_xmp(meta)) == meta


@pytest.mark.parametrize("change, words", [
    ({"licence_number": ""}, "missing fields ['licence_number']"),
    ({"colour": "red"}, "unknown fields ['colour']"),
    ({"issue_date": "2024-13-01"}, "issue_date '2024-13-01' is not an ISO 8601 date"),
    ({"valid_until": "2044/04/30"}, "valid_until"),
    ({"valid_from": "2045-01-01"}, "valid_from is after valid_until"),
    ({"holder_name": 42}, "holder_name must be a string"),
    ({"holder_name": "x" * (MAX_FIELD + 1)}, "holder_name is longer than"),
    ({"holder_name": "a\nb"}, "holder_name holds a control character"),
    ({"holder_id": "\x85"}, "holder_id holds a control character"),
    ({"holder_id": "\ufffe"}, "holder_id holds a control character or one XML cannot carry"),
])
def test_bad_metadata_names_the_field(change: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        LicenceMetadata.parse({**GOOD, **change}, source="licence.json")
    assert bad.value.reason == "BAD_LICENCE_METADATA"
    assert bad.value.message.startswith("licence.json: ") and words in bad.value.message, bad.value.message


@given(st.dictionaries(st.sampled_from([*GOOD, "other"]), st.one_of(st.text(max_size=40), st.integers(), st.none())))
def test_parse_accepts_or_refuses_with_its_reason(data: dict[str, object]) -> None:
    try:
        meta = LicenceMetadata.parse(data)
    except InvalidInput as exc:
        assert exc.reason == "BAD_LICENCE_METADATA"
        return
    assert from_xmp(to_xmp(meta)) == meta
