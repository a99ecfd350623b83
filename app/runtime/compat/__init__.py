"""Version-checked adjustments to Faust internals (one place, tested).

Importing it checks the installed Faust, aiokafka and mode versions first: outside
the tested ranges it raises ``UnsupportedLibrary`` before touching their internals.
"""

from __future__ import annotations

from app.runtime.compat.versions import (
    TESTED_VERSIONS,
    UnsupportedLibrary,
    check_library_versions,
)

check_library_versions()

from app.runtime.compat.broker_flavour import settings_for_broker  # noqa: E402  (after the check)
from app.runtime.compat.faust_transport import (  # noqa: E402
    NudgeflowTransport,
    fetch_position,
    fetch_true_highwaters,
    raw_producer,
    settled_position,
)
from app.runtime.compat.streams import DirectQueue  # noqa: E402
from app.runtime.compat.table_store import memory_store_maps  # noqa: E402

__all__ = [
    "TESTED_VERSIONS",
    "DirectQueue",
    "NudgeflowTransport",
    "UnsupportedLibrary",
    "check_library_versions",
    "fetch_position",
    "fetch_true_highwaters",
    "memory_store_maps",
    "raw_producer",
    "settings_for_broker",
    "settled_position",
]
