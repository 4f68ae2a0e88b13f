"""Video providers behind one adapter interface (:class:`.base.VideoProvider`), chosen per clinic.

Daily (primary hosted), Amazon Chime SDK, and the built-in local WebRTC provider. Twilio Programmable
Video is deliberately not built: it is closed to new customers and ends on 2026-12-05 (see README.md).
"""
