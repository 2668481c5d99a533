"""Text analysis: Elasticsearch's analyzer names, Korean through kiwipiepy like ``nori``.

An analyzer turns text into :class:`Token` s (term, position, character offsets).  The
same analyzer runs at index and at query time; offsets let the highlighter mark the
original text.

- ``nori``: Korean morphemes by kiwipiepy with nori's default stop tags -- particles
  (J*), endings (E*), suffixes (XS*), adverbs, determiners and symbols dropped; nouns,
  verb and adjective stems, roots, numbers and foreign words kept.  Kiwi splits compound
  nouns, so 온도센서 is indexed as 온도, 센서 (nori's ``decompound_mode: discard``).
  Latin words are lower-cased and stemmed (English).
- ``standard``: words (letters/digits runs, ``192.168.0.1`` and ``can't`` kept whole),
  lower-cased.
- ``english``: ``standard`` without English stop words, stemmed.
- ``whitespace``: split on whitespace, case kept.
- ``keyword``: the whole value as one term.

Logs repeat a few thousand templates with varying values, so analysis is cached: the
texts are analyzed word by word (whitespace-separated) and each distinct word only
once per analyzer; the uncached Korean words of a batch of documents go to kiwi in one
call (kiwi's worker threads).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

ANALYZERS = ("nori", "standard", "english", "whitespace", "keyword", "simple")


class Token(NamedTuple):
    """One term of an analyzed text, with its position and ``[start, end)`` characters."""

    term: str
    position: int
    start: int
    end: int


# nori's default stop tags, in Sejong tags as kiwi reports them: what we drop.
_DROPPED_PREFIXES = ("J", "E", "XS", "XP", "S")
_KEPT_SYMBOLS = {"SL", "SN", "SH"}
_DROPPED = {"IC", "MAG", "MAJ", "MM", "VCP", "VCN", "UN", "W_EMOJI", "W_HASHTAG"}

_HANGUL = "\uac00-\ud7a3\u3131-\u318e"
_WORD = re.compile(r"\w+(?:['\u2019.]\w+)*")
_WHITESPACE = re.compile(r"\S+")
_ENGLISH_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """English (Snowball) stem of a lower-cased word."""
    result = _stemmer().analyze(word)
    return result[0] if result else word


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


_kiwi_lock = threading.Lock()
_kiwi: Any = None


def kiwi() -> Any:
    """The process's Kiwi (loading the model takes a second; done once)."""
    global _kiwi
    with _kiwi_lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            workers = int(os.environ.get("HAERYU_KIWI_THREADS", "0")) or (os.cpu_count() or 1)
            _kiwi = Kiwi(num_workers=workers)
        return _kiwi


# A word analyzed: (term, start, end) relative to the word.
WordTokens = tuple[tuple[str, int, int], ...]


class WordCache:
    """Analyzed whitespace-separated words of one analyzer, bounded in size.

    Every analyzer but ``keyword`` yields terms that never span whitespace, so a text
    is analyzed word by word and each distinct word only once.  Korean words are
    analyzed by kiwi one word at a time (eojeol): particles and endings attach to their
    word, so the nouns and stems come out as with the whole sentence.
    """

    def __init__(self, analyze_word: Any, max_entries: int = 1_000_000) -> None:
        self.analyze_word = analyze_word
        self.tokens: dict[str, WordTokens] = {}
        self.terms: dict[str, tuple[str, ...]] = {}
        self.max_entries = max_entries

    def put(self, word: str, tokens: WordTokens) -> WordTokens:
        if len(self.tokens) >= self.max_entries:
            self.tokens.clear()
            self.terms.clear()
        self.tokens[word] = tokens
        self.terms[word] = tuple(t[0] for t in tokens)
        return tokens

    def get(self, word: str) -> WordTokens:
        found = self.tokens.get(word)
        if found is None:
            found = self.put(word, self.analyze_word(word))
        return found

    def word_terms(self, word: str) -> tuple[str, ...]:
        found = self.terms.get(word)
        if found is None:
            self.get(word)
            found = self.terms[word]
        return found


_HAS_HANGUL = re.compile(f"[{_HANGUL}]")


def _keep(tokens: Sequence[Any]) -> WordTokens:
    kept = []
    for t in tokens:
        tag = t.tag.split("-")[0]
        if tag in _DROPPED or (tag.startswith(_DROPPED_PREFIXES) and tag not in _KEPT_SYMBOLS):
            continue
        form = t.form.lower()
        if tag == "SL":
            form = stem(form)
        kept.append((form, t.start, t.start + t.len))
    return tuple(kept)


def _nori_word(word: str) -> WordTokens:
    if _HAS_HANGUL.search(word):
        return _keep(kiwi().tokenize(word))
    return _latin_word(word)


def _latin_word(word: str) -> WordTokens:
    out = []
    for m in _WORD.finditer(word):
        term = m.group().lower()
        if term.isalpha():
            term = stem(term)
        out.append((term, m.start(), m.end()))
    return tuple(out)


def _standard_word(word: str) -> WordTokens:
    return tuple((m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(word))


def _english_word(word: str) -> WordTokens:
    out = []
    for m in _WORD.finditer(word):
        term = m.group().lower()
        if term not in _ENGLISH_STOP:
            out.append((stem(term), m.start(), m.end()))
    return tuple(out)


def _whitespace_word(word: str) -> WordTokens:
    return ((word, 0, len(word)),)


_caches = {
    "nori": WordCache(_nori_word),
    "standard": WordCache(_standard_word),
    "simple": WordCache(_standard_word),
    "english": WordCache(_english_word),
    "whitespace": WordCache(_whitespace_word),
}


@dataclass(frozen=True, slots=True)
class Analyzer:
    """A named analysis chain; :meth:`analyze` gives tokens with offsets."""

    name: str

    def analyze(self, text: str) -> list[Token]:
        """Tokens of ``text`` with positions and character offsets (for highlighting)."""
        if self.name == "keyword":
            return [Token(text, 0, 0, len(text))] if text else []
        cache = _caches[self.name]
        tokens: list[Token] = []
        for m in _WHITESPACE.finditer(text):
            base = m.start()
            for term, start, end in cache.get(m.group()):
                tokens.append(Token(term, len(tokens), base + start, base + end))
        return tokens

    def terms(self, text: str) -> list[str]:
        """Only the terms, in order (what the index needs; the fast path)."""
        if self.name == "keyword":
            return [text] if text else []
        cache = _caches[self.name]
        terms_of = cache.terms.get
        out: list[str] = []
        for word in text.split():
            found = terms_of(word)
            if found is None:
                if word.isdigit():
                    out.append(word)  # a value: analyzed as itself, not cached
                    continue
                found = cache.word_terms(word)
            out.extend(found)
        return out

    def prepare(self, texts: Iterable[str]) -> None:
        """Analyze the uncached Korean words of many texts in one kiwi call (its threads)."""
        if self.name != "nori":
            return
        cache = _caches["nori"]
        # One split and one set difference for the whole batch (both in C).
        words = set(" ".join(texts).split())
        missing = [w for w in words.difference(cache.tokens) if _HAS_HANGUL.search(w)]
        if len(missing) < 2:
            return
        for word, tokens in zip(missing, kiwi().tokenize(missing), strict=True):
            cache.put(word, _keep(tokens))


def analyzer(name: str) -> Analyzer:
    """The analyzer called ``name`` (an ES analyzer name)."""
    if name not in ANALYZERS:
        from haeryu.stores.search.errors import illegal_argument

        raise illegal_argument(f"failed to find analyzer [{name}]")
    return Analyzer(name)
