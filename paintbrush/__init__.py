"""Paintbrush: real-time Django. Commands go in through REST, changes come out over WebSocket.

Importing this package loads nothing: the public API lives in its modules
(``paintbrush.resources``, ``paintbrush.models``, ``paintbrush.documents``).
"""

__version__ = "0.1.0"
