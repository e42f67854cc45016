"""
Log filters for the servers Paintbrush runs under. In the project's settings:

    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"client_protocol_errors": {"()": "paintbrush.logfilters.ClientProtocolErrors"}},
        "loggers": {"uvicorn.error": {"filters": ["client_protocol_errors"]}},
    }

uvicorn's websockets-sansio protocol answers a text frame that is not UTF-8 as it should
(close 1007), but logs it with ``logger.exception``: an ERROR and a traceback for a
client's mistake, which anyone may repeat on every connection they open (a log flood,
and a false alarm for whoever watches ERRORs). The filter keeps it as one INFO line,
without the traceback, like the "connection open" line each connection already logs.
"""

from __future__ import annotations

import logging

__all__ = ["ClientProtocolErrors", "client_protocol_error"]

_INVALID_UTF8 = "Invalid UTF-8 sequence received from client."


def client_protocol_error(record: logging.LogRecord) -> bool:
    """Demote uvicorn's invalid-UTF-8 record to one INFO line; pass everything else."""
    if record.msg == _INVALID_UTF8 and record.levelno > logging.INFO:
        record.msg = "Invalid UTF-8 sequence received from client: closed with 1007."
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        record.exc_info = record.exc_text = None
        # Handlers only compare levels with the record's: honour the logger's own here.
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)
    return True


class ClientProtocolErrors(logging.Filter):
    """``client_protocol_error`` as a ``logging.Filter``, for ``dictConfig``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return client_protocol_error(record)
