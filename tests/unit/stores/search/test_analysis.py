"""The nori-like Korean analyzer and the other ES analyzers."""

from __future__ import annotations

import pytest

from haeryu.stores.search.analysis import analyzer
from haeryu.stores.search.errors import SearchError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("온도가 높다", "온도"),
        ("온도를 확인하세요", "온도"),
        ("온도센서 점검", "온도"),
        ("초과했습니다", "초과"),
        ("기준치를 초과", "기준"),
    ],
)
def test_nori_keeps_nouns_and_stems_so_the_root_finds_inflected_forms(
    text: str, expected: str
) -> None:
    assert expected in analyzer("nori").terms(text)


def test_nori_drops_particles_and_endings() -> None:
    terms = analyzer("nori").terms("온도가 기준치를 초과했습니다")
    assert terms == ["온도", "기준", "초과"]
    assert not {"가", "를", "습니다", "었"} & set(terms)


def test_nori_lower_cases_and_stems_latin_words_in_mixed_text() -> None:
    assert analyzer("nori").terms("Sensor-12 exceeded 온도 192.168.0.1") == [
        "sensor",
        "12",
        "exceed",
        "온도",
        "192.168.0.1",
    ]


def test_offsets_point_at_the_original_text_for_highlighting() -> None:
    text = "센서 온도가 초과"
    tokens = analyzer("nori").analyze(text)
    assert [(t.term, text[t.start : t.end]) for t in tokens] == [
        ("센서", "센서"),
        ("온도", "온도"),
        ("초과", "초과"),
    ]
    assert [t.position for t in tokens] == [0, 1, 2]


def test_standard_english_whitespace_keyword() -> None:
    assert analyzer("standard").terms("The Running Dogs") == ["the", "running", "dogs"]
    assert analyzer("english").terms("The Running Dogs") == ["run", "dog"]
    assert analyzer("whitespace").terms("Foo-Bar baz") == ["Foo-Bar", "baz"]
    assert analyzer("keyword").terms("Foo Bar") == ["Foo Bar"]


def test_an_unknown_analyzer_is_a_400() -> None:
    with pytest.raises(SearchError) as info:
        analyzer("klingon")
    assert info.value.status == 400


def test_a_batch_is_analyzed_once_per_distinct_word() -> None:
    nori = analyzer("nori")
    texts = [f"장비 {i} 과열 경보가 발생했습니다" for i in range(200)]
    nori.prepare(texts)
    assert nori.terms(texts[7]) == ["장비", "7", "과열", "경보", "발생"]
