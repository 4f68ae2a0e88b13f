"""``telehub onboard``: point the hub at a clinic's EHR and see, in plain words, what works.

One concept per module: :mod:`.report` (checks and the report), :mod:`.compare` (discovery documents
versus the vendor profile, pure), :mod:`.plan` (which read/search probes to run, pure),
:mod:`.advice` (an upstream error → reason and next step, pure), :mod:`.token_check`,
:mod:`.probes` (reads, searches, paging, latency), :mod:`.runner` (the order of the steps),
:mod:`.connection_file` (the TOML ``telehub sync`` reads), :mod:`.render` (terminal, JSON, HTML),
:mod:`.replay` (offline runs from recorded request/response pairs) and :mod:`.command` (click).
"""
