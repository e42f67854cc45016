"""
Servers that ``bench/fanout.py`` compares with Paintbrush.

- ``floor``: a pure asyncio ``websockets`` server, the floor of the comparison.
- ``relay``: a stock Channels project: each socket its own channel in a group,
  ``group_send`` of a pre-encoded text from ``on_commit``.
- ``dcrf``: djangochannelsrestframework's model observer, as its README shows it.
- ``paintbrush_settings``: the demo project's settings with the channel layer chosen by
  the benchmark (to compare channels-redis's two layers).
"""
