"""Notification adapters (console, Twilio SMS, SendGrid e-mail) behind one interface and the BAA gate.

Every adapter declares ``name``/``baa``/``phi_capable``/``boundary`` (its
:class:`fhir_gateway.outbound.baa.AdapterSpec`, with this deployment's ``baa_signed`` applied) and
runs :meth:`PhiGuard.check` before a byte leaves: PHI-free reminders go anywhere, a message
marked ``contains_phi`` is refused (``BaaRequired``/``NotPhiCapable``) unless the vendor has a BAA.
"""
from smart_app.scheduling.notify.base import DeliveryError, Message, Notifier, Receipt, adapters_from_settings

__all__ = ["DeliveryError", "Message", "Notifier", "Receipt", "adapters_from_settings"]
