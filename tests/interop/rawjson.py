"""Byte-faithful views into JSON text: find members and elements as exact substrings.

`json.loads` normalizes (key order survives, but number formats such as `1.50`, escapes and
whitespace do not), so wire comparisons slice the original text instead of re-serializing it.
Only the structure is scanned; values are never decoded except object keys.
"""

from __future__ import annotations

import json

_WS = " \t\r\n"


class RawJsonError(ValueError):
    pass


def _ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _string_end(s: str, i: int) -> int:
    """Index just past the string starting at s[i] == '"'."""
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        else:
            i += 1
    raise RawJsonError("unterminated string")


def value_end(s: str, i: int) -> int:
    """Index just past the JSON value starting at s[i] (no leading whitespace)."""
    if i >= len(s):
        raise RawJsonError("value expected at end of text")
    c = s[i]
    if c == '"':
        return _string_end(s, i)
    if c in "{[":
        depth = 0
        while i < len(s):
            c = s[i]
            if c == '"':
                i = _string_end(s, i)
                continue
            if c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise RawJsonError("unterminated container")
    j = i
    while j < len(s) and s[j] not in ",}] \t\r\n":
        j += 1
    if j == i:
        raise RawJsonError(f"unexpected {c!r} at {i}")
    return j


def members(s: str, start: int = 0) -> list[tuple[str, int, int]]:
    """The members of the object at s[start:] as (key, value_start, value_end)."""
    i = _ws(s, start)
    if i >= len(s) or s[i] != "{":
        raise RawJsonError("object expected")
    out: list[tuple[str, int, int]] = []
    i = _ws(s, i + 1)
    if s[i] == "}":
        return out
    while True:
        ke = _string_end(s, i)
        key = json.loads(s[i:ke])
        i = _ws(s, ke)
        if s[i] != ":":
            raise RawJsonError("':' expected")
        vs = _ws(s, i + 1)
        ve = value_end(s, vs)
        out.append((key, vs, ve))
        i = _ws(s, ve)
        if s[i] == "}":
            return out
        if s[i] != ",":
            raise RawJsonError("',' or '}' expected")
        i = _ws(s, i + 1)


def elements(s: str, start: int = 0) -> list[str]:
    """The elements of the array at s[start:], each as its exact text."""
    i = _ws(s, start)
    if i >= len(s) or s[i] != "[":
        raise RawJsonError("array expected")
    out: list[str] = []
    i = _ws(s, i + 1)
    if s[i] == "]":
        return out
    while True:
        e = value_end(s, i)
        out.append(s[i:e])
        i = _ws(s, e)
        if s[i] == "]":
            return out
        if s[i] != ",":
            raise RawJsonError("',' or ']' expected")
        i = _ws(s, i + 1)


def member(s: str, key: str) -> str | None:
    """The exact text of member `key` of the object `s`, or None."""
    for k, vs, ve in members(s):
        if k == key:
            return s[vs:ve]
    return None


def with_member(s: str, key: str, value_text: str) -> str:
    """`s` with the value of its member `key` replaced by `value_text` (nothing else touched)."""
    for k, vs, ve in members(s):
        if k == key:
            return s[:vs] + value_text + s[ve:]
    raise RawJsonError(f"no member {key!r}")


def requalify(item: str, key: str, qualified: str) -> str:
    """A list item as the gateway should show it: only member `key` (the name) rewritten."""
    return with_member(item, key, json.dumps(qualified, ensure_ascii=False, separators=(",", ":")))



def without_members(s: str, keys: set[str]) -> str:
    """The object `s` with members `keys` cut out of the text; every kept member, and the
    separator written before it, stays byte for byte."""
    full = _members_with_key_start(s)
    if not any(k in keys for k, *_ in full):
        return s
    head = s[: _ws(s, 0) + 1]
    tail = s[full[-1][3]:] if full else s[len(head):]
    parts: list[str] = []
    prev_end = None
    for k, ks, _vs, ve in full:
        if k not in keys:
            sep = s[prev_end:ks] if (parts and prev_end is not None) else ""
            parts.append(sep + s[ks:ve])
        prev_end = ve
    lead = s[len(head): full[0][1]] if full else ""
    return head + lead + "".join(parts) + tail


def _members_with_key_start(s: str) -> list[tuple[str, int, int, int]]:
    """Like `members`, with where each key starts: (key, key_start, value_start, value_end)."""
    out = []
    i = _ws(s, 0)
    if i >= len(s) or s[i] != "{":
        raise RawJsonError("object expected")
    i = _ws(s, i + 1)
    if s[i] == "}":
        return out
    while True:
        ke = _string_end(s, i)
        key = json.loads(s[i:ke])
        colon = _ws(s, ke)
        vs = _ws(s, colon + 1)
        ve = value_end(s, vs)
        out.append((key, i, vs, ve))
        i = _ws(s, ve)
        if s[i] == "}":
            return out
        i = _ws(s, i + 1)
