"""The launch inspector: a tiny server-rendered confidential SMART client for the demo.

It completes an EHR launch server-side (discovery, PKCE S256, code exchange with client_secret_basic)
and shows the launch context and the patient's name, so a newcomer can click sandbox → login →
consent → inspector and see what an app receives.
"""
