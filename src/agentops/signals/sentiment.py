"""A small lexicon-based sentiment score of what the customer wrote.

Method, kept deliberately simple so anyone can check a score by hand:

1. Only USER turns are read; the agent's own politeness must not count as customer mood.
2. Text is lower-cased and split into clauses at . , ; : ! ? and line breaks, then into words.
3. Each word found in the lexicon adds its weight (-3 .. +3).
4. An intensifier ("very", "really", ...) right before a lexicon word multiplies it by 1.5.
5. A negator ("not", "no", "never", any "...n't") up to three words earlier in the same
   clause flips the word's sign and scales it by 0.75: "not happy" is negative, "not bad"
   mildly positive.
6. The total over all user turns is squashed into [-1, 1] with total / sqrt(total^2 + 15)
   (the normalisation VADER uses), so one "thanks" gives about +0.25 and a stream of
   complaints approaches -1. No lexicon words at all gives exactly 0.

It is a cheap signal for trends across many conversations, not a judgement of any single
one: sarcasm, context and domain words ("cancel", "delay") are invisible to it.
"""

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LEXICON: dict[str, float] = {
    # Positive
    "amazing": 3.0,
    "appreciate": 2.0,
    "appreciated": 2.0,
    "awesome": 3.0,
    "brilliant": 3.0,
    "easy": 1.0,
    "excellent": 3.0,
    "fantastic": 3.0,
    "glad": 2.0,
    "good": 1.5,
    "great": 2.0,
    "happy": 2.0,
    "helpful": 2.0,
    "love": 2.5,
    "lovely": 2.0,
    "nice": 1.5,
    "perfect": 2.5,
    "pleased": 2.0,
    "quick": 1.0,
    "resolved": 1.5,
    "satisfied": 2.0,
    "smooth": 1.5,
    "thank": 1.0,
    "thanks": 1.0,
    "wonderful": 3.0,
    # Negative
    "absurd": -2.0,
    "angry": -2.5,
    "annoyed": -2.0,
    "annoying": -2.0,
    "awful": -3.0,
    "bad": -1.5,
    "complaint": -1.5,
    "confused": -1.0,
    "confusing": -1.5,
    "disappointed": -2.0,
    "disappointing": -2.0,
    "frustrated": -2.5,
    "frustrating": -2.5,
    "furious": -3.0,
    "hate": -2.5,
    "horrible": -3.0,
    "incompetent": -3.0,
    "joke": -1.5,
    "mess": -2.0,
    "poor": -1.5,
    "ridiculous": -2.5,
    "rude": -2.5,
    "sucks": -2.5,
    "terrible": -3.0,
    "unacceptable": -3.0,
    "unhappy": -2.0,
    "upset": -2.0,
    "useless": -3.0,
    "waste": -2.0,
    "worst": -3.0,
    "wrong": -1.5,
}

INTENSIFIERS: frozenset[str] = frozenset(
    {"absolutely", "extremely", "incredibly", "really", "so", "totally", "very"}
)
NEGATORS: frozenset[str] = frozenset(
    {"cannot", "hardly", "never", "no", "nobody", "none", "not", "nothing", "without"}
)
NEGATION_SCOPE = 3
NEGATION_FACTOR = -0.75
INTENSIFIER_FACTOR = 1.5
SQUASH_ALPHA = 15.0

# One pass finds words and clause breaks together: a word never spans a break, so a word's
# clause is the run of words back to the last break token.
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?\n]+")
_BREAK_START = frozenset(".,;:!?\n")
# Every byte but a-z becomes a space (all of a UTF-8 multi-byte character too): a lexicon
# word (none has an apostrophe) can only be a word of the text if it is one of these runs
# of letters, so a cheap split rules out the three turns in four that hold none.
_LETTER_RUNS = bytes(code if 97 <= code <= 122 else 32 for code in range(256))
_LEXICON_BYTES = frozenset(word.encode() for word in LEXICON)
# Weights are multiples of 1/16 and their sums exact in floating point, so totals do not
# depend on the order they are added in (per clause, per message or all at once).


def score_user_sentiment(messages: Sequence[Mapping[str, Any]]) -> float:
    """Sentiment of the user turns in [-1, 1]; 0 when they carry no lexicon words."""
    return score_texts(
        message_text(message) for message in messages if message.get("role") == "user"
    )


def score_texts(texts: Iterable[str]) -> float:
    """Sentiment of the user's texts (e.g. turns) taken together, by the same method."""
    total = 0.0
    for text in texts:
        total += lexicon_total(text)
    return squash(total)


def score_text(text: str) -> float:
    """Sentiment of one piece of text in [-1, 1], by the same method."""
    return squash(lexicon_total(text))


def lexicon_total(text: str) -> float:
    """Unnormalised sum of lexicon weights, after negation and intensifiers."""
    normalised = text.lower()
    runs = normalised.encode("utf-8", "surrogatepass").translate(_LETTER_RUNS).split()
    if _LEXICON_BYTES.isdisjoint(runs):
        return 0.0
    tokens = _TOKEN.findall(normalised.replace("\u2019", "'"))
    total = 0.0
    for index, token in enumerate(tokens):
        weight = LEXICON.get(token)
        if weight is not None:
            total += _in_context(weight, tokens, index)
    return total


def squash(total: float) -> float:
    """Map an unbounded lexicon total into [-1, 1], keeping 0 at 0."""
    if total == 0:
        return 0.0
    return total / math.sqrt(total * total + SQUASH_ALPHA)


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message, whether content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _in_context(weight: float, tokens: list[str], index: int) -> float:
    # The words before this one in its clause, nearest first, as far as a negator reaches.
    before: list[str] = []
    position = index - 1
    while position >= 0 and len(before) < NEGATION_SCOPE:
        token = tokens[position]
        if token[0] in _BREAK_START:
            break
        before.append(token)
        position -= 1
    if before and before[0] in INTENSIFIERS:
        weight *= INTENSIFIER_FACTOR
    if any(_is_negator(word) for word in before):
        weight *= NEGATION_FACTOR
    return weight


def _is_negator(word: str) -> bool:
    return word in NEGATORS or word.endswith("n't")
