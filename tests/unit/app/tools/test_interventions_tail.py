"""``nudgeflow interventions`` with no Redis to read: one line, never a traceback."""

from __future__ import annotations

import io

from app.runtime.embedded import free_port
from app.tools.interventions import redacted, run


def test_unreachable_redis_is_one_line_with_the_hint(capsys):
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    out = io.StringIO()
    assert run(url, 5, follow=False, hint=" (try --redis-url)", out=out) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nudgeflow interventions: cannot read Redis at {redacted(url)}: ")
    assert err.endswith(" (try --redis-url)\n") and err.count("\n") == 1
    assert "secret" not in err and out.getvalue() == ""
