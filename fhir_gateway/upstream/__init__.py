"""The EHR side: a client per clinic connection, driven by its vendor profile and the vendor mappers.

Modules, one concept each: :mod:`.connection` (a clinic's endpoint and credentials),
:mod:`.assertion` (SMART backend-services client assertion), :mod:`.tokens` (acquisition and cache),
:mod:`.throttle` (shared token bucket), :mod:`.breaker` (circuit breaker), :mod:`.retry` (back-off),
:mod:`.decode` (response → JSON or a typed error), :mod:`.client` (one call: auth, retry, audit),
:mod:`.paging` (every page of a search), :mod:`.writes` (creates without duplicates),
:mod:`.sync` and :mod:`.sync_command` (``telehub sync``). Errors: :mod:`.errors`.
"""
