"""The sandbox EHR (issue 5): a launcher that plays Epic, Cerner, athenahealth or a plain R4 EHR
against the hub's own data, and vendor-flavoured FHIR endpoints for adapter tests.

Development and tests only (refused with ``TELEHUB_ENV=prod``). Mounted at /sandbox beside the hub by
:func:`sandbox_fixtures.sandbox.wsgi.mount`; nothing in the product imports it (ARCHITECTURE: only
tests, the demo and the onboarding replay do).

Map: :mod:`.flavours` (flavours.toml) · :mod:`.hub` (in-process hub client) · :mod:`.chart` and
:mod:`.ehr` (launcher page) · :mod:`.launch` (launch context, redirect) · :mod:`.fhir_proxy` with
:mod:`.paging`, :mod:`.ratelimit`, :mod:`.vendor_errors`, :mod:`.xmlish` (flavoured endpoints) ·
:mod:`.token_shim` (flavoured discovery/authorize/token) · :mod:`.inspector` (the demo SMART app) ·
:mod:`.app` and :mod:`.wsgi` (wiring).
"""
