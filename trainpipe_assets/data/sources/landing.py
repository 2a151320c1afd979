"""The first day the user has data for, which `partitions_start: auto` starts the daily partitions at: the earliest
`<name>_YYYY-MM-DD.csv` in the landing folder, or the SQL source's earliest timestamp."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from trainpipe_assets.data.sources.csv_source import IN_PROGRESS_SUFFIXES, parse_file_name


def earliest_day(trainpipe) -> Optional[dt.date]:
    source = trainpipe.settings.source
    if source.kind == "sql":
        from trainpipe_assets.data.sources.sql_source import SourceError, SqlSource

        try:
            return SqlSource.from_settings(source).earliest_day()
        except SourceError as e:  # the definitions must load even when the database is away
            logging.getLogger(__name__).warning("partitions_start: auto could not ask the SQL source: %s", e)
            return None
    landing = trainpipe.landing_dir
    if not landing.is_dir():
        return None
    days = [
        parsed[1]
        for p in landing.iterdir()
        if p.is_file() and not p.name.endswith(IN_PROGRESS_SUFFIXES) and (parsed := parse_file_name(p.name))
    ]
    return min(days, default=None)
