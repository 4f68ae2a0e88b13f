"""The Telehub SMART on FHIR app: EHR/standalone launch, provider dashboard, and feature packages
(``scheduling``, …). ``smart_app.app.create_app(settings)`` builds it; ``smart_app.wsgi:create`` serves it alone."""
