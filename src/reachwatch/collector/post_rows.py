"""Single posts to rows in a batch worker process: each post unwrapped from its body
(:mod:`~reachwatch.collector.submissions`), staged and finished as in the request's process, a
group of them in one call (:mod:`~reachwatch.collector.post_lane` sends them).

Each post keeps its own answer: a post refused (its 4xx, or a bug: 500) is left out of the rows and
named with its answer; the others' rows come back in order, as one Arrow IPC table.
"""

from __future__ import annotations

import datetime as dt
import mmap

from reachwatch.collector.attribution import Network
from reachwatch.collector.finish import Staged, finish_rows
from reachwatch.collector.http import ApiError
from reachwatch.collector.prepare import stage
from reachwatch.collector.submissions import Kind, unwrap

#: A worker request's first item when it holds posts, not a batch's piece
POSTS = "posts"
#: One post of a group: how its body holds the measurement, where the body is in the bulk
#: (start, end), and the submitter's address, vantage point and network (asn, name, cc)
Item = tuple[Kind, int, int, str, "str | None", "str | None", "str | None", "str | None"]
#: A post refused: its index in the group, status, message, headers
Refused = tuple[int, int, str, dict[str, str]]


def post_rows(
    body: bytes | mmap.mmap,
    items: list[Item],
    *,
    secret: bytes,
    verdict_now: bool,
    identity: str,
) -> tuple[list[Refused], bytes]:
    """(refused, rows): the posts of ``items`` whose bodies are in ``body``, each staged as
    ``POST /report/{id}`` stages its own (``where``: "content"); the rows of those not refused, in
    order, as Arrow IPC bytes (b"" for none)."""
    received = dt.datetime.now(dt.UTC)  # once: the posts of a group arrived together
    staged: list[Staged] = []
    refused: list[Refused] = []
    for index, (kind, start, end, submitter, vantage, asn, name, cc) in enumerate(items):
        try:
            content, report_id = unwrap(kind, body[start:end], identity, secret)
            staged.append(
                stage(
                    content,
                    secret,
                    verdict_now,
                    submitter,
                    Network(asn=asn, name=name, cc=cc),
                    report_id,
                    "content",
                    received,
                    identity=identity,
                    vantage=vantage,
                )
            )
        except ApiError as exc:
            refused.append((index, exc.status, exc.message, exc.headers))
        except Exception as exc:  # a bug: say which, never what (the post holds addresses)
            refused.append((index, 500, type(exc).__name__, {}))
    return refused, (finish_rows(staged, keep_gil=False).to_ipc() if staged else b"")


def answer_of(refusal: Refused) -> Exception:
    """What the request of a refused post raises: its 4xx, or a RuntimeError naming the bug (500)."""
    _, status, message, headers = refusal
    if status >= 500:
        return RuntimeError(f"staging a post failed in a batch worker: {message}")
    return ApiError(status, message, headers=headers or None)
