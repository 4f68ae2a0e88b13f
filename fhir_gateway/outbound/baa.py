"""PHI leaves the hub only for an adapter covered by a Business Associate Agreement: enforced in code.

Every adapter for an outside service declares three facts:

``name``
    its registry name (``daily``, ``twilio-sms``, ``surescripts``…);
``baa``
    whether a BAA covering this use is signed. It is a contract fact of a deployment, not of
    the code, so it comes from settings (``baa_signed = "daily,aws-ses"``) and defaults to
    ``False`` for every third-party vendor: fail closed;
``phi_capable``
    whether the adapter's data path may carry PHI at all. An adapter built to send only
    PHI-free content (a console printer, an SMS that carries a portal link) says ``False``
    and is refused PHI even if a BAA exists.

and optionally ``boundary``: ``vendor`` (default: a third party, a BAA is needed),
``hub`` (runs inside Telehub's own deployment, e.g. the local WebRTC provider) or
``covered_entity`` (the clinic's own EHR, where the PHI comes from).

Before sending, an adapter calls :meth:`PhiGuard.require_baa` (or decorates the method with
:func:`sends_phi`). Without a BAA it raises :class:`BaaRequired` *before* any byte leaves;
the caller turns that into a refusal (and a security AuditEvent), never into a retry.
"""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, runtime_checkable

log = logging.getLogger("telehub.outbound")

AdapterKind = Literal["video", "notification", "pharmacy", "clearinghouse", "ehr"]
Boundary = Literal["vendor", "hub", "covered_entity"]
BOUNDARIES: tuple[Boundary, ...] = ("vendor", "hub", "covered_entity")


class PhiRefused(PermissionError):
    """PHI was about to be sent where it may not go. Carries names only, never the PHI."""

    def __init__(self, adapter: str, reason: str, purpose: str = "") -> None:
        self.adapter = adapter
        self.reason = reason
        self.purpose = purpose
        where = f" ({purpose})" if purpose else ""
        super().__init__(f"PHI refused for outside adapter {adapter!r}{where}: {reason}")


class BaaRequired(PhiRefused):
    """The adapter's vendor has no Business Associate Agreement (``baa: false``)."""


class NotPhiCapable(PhiRefused):
    """The adapter is declared PHI-free (``phi_capable: false``); send it PHI-free content only."""


@runtime_checkable
class OutboundAdapter(Protocol):
    """What the guard needs to know about an adapter (``boundary`` is optional, default ``vendor``)."""

    @property
    def name(self) -> str: ...

    @property
    def baa(self) -> bool: ...

    @property
    def phi_capable(self) -> bool: ...


@dataclass(frozen=True)
class AdapterSpec:
    """A known outside adapter: the facts the guard and docs/security.md rely on."""

    name: str
    kind: AdapterKind
    vendor: str
    phi_capable: bool
    baa: bool = False
    boundary: Boundary = "vendor"
    sees: str = ""  # what PHI it would see if allowed
    notes: str = ""  # BAA facts and caveats

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"adapter {self.name}: boundary must be one of {', '.join(BOUNDARIES)}")


# Defaults: no third-party vendor is trusted with PHI until the deployment attests its BAA.
KNOWN_ADAPTERS: tuple[AdapterSpec, ...] = (
    # video (issue 8)
    AdapterSpec("daily", "video", "Daily (daily.co)", phi_capable=True,
                sees="live audio/video of the visit, participant display names, room names, meeting analytics",
                notes="BAA available; the domain property `hipaa` is enabled by Daily under a BAA. Use opaque "
                      "UUIDs as user_id and room names, never names or MRNs."),
    AdapterSpec("chime", "video", "Amazon Chime SDK (AWS)", phi_capable=True,
                sees="live audio/video, ExternalUserId/ExternalMeetingId, attendee join tokens",
                notes="covered only under the AWS BAA for HIPAA-eligible services (eligibility of the Chime SDK "
                      "to be confirmed against AWS's current list: unverified here). ExternalUserId must be opaque."),
    AdapterSpec("twilio-video", "video", "Twilio Programmable Video (legacy)", phi_capable=True,
                sees="live audio/video, participant identities, room names",
                notes="legacy only: closed to new customers, end of life 2026-12-05 (extended; withdrawal "
                      "unverified). Not a default provider. BAA coverage unverified here."),
    AdapterSpec("local-webrtc", "video", "Telehub local WebRTC (browser to browser)", phi_capable=True,
                boundary="hub",
                sees="signaling (SDP, ICE candidates) passes through the hub; media flows peer to peer, "
                     "DTLS-SRTP encrypted",
                notes="no business associate: runs inside the hub. A third-party TURN relay only carries "
                      "DTLS-SRTP-encrypted media it cannot decrypt; document it if one is configured."),
    # notifications (issue 7)
    AdapterSpec("twilio-sms", "notification", "Twilio Messaging (SMS)", phi_capable=True,
                sees="patient phone number, message text",
                notes="which Twilio products the BAA covers is unverified here; keep PHI out of SMS anyway and "
                      "send a link to the portal (PHI-free content passes without a BAA)."),
    AdapterSpec("sendgrid", "notification", "Twilio SendGrid (e-mail)", phi_capable=True,
                sees="patient e-mail address, subject, body, custom_args",
                notes="BAA coverage unverified here: treat as no BAA; send PHI-free reminders with a portal link."),
    AdapterSpec("aws-ses", "notification", "Amazon SES (e-mail)", phi_capable=True,
                sees="patient e-mail address, subject, body",
                notes="covered only under the AWS BAA for HIPAA-eligible services (unverified here)."),
    AdapterSpec("aws-sns", "notification", "Amazon SNS (SMS)", phi_capable=True,
                sees="patient phone number, message text",
                notes="covered only under the AWS BAA for HIPAA-eligible services (unverified here)."),
    AdapterSpec("console", "notification", "development console printer", phi_capable=False, boundary="hub",
                sees="nothing: PHI-free content only (it prints to the process output, i.e. the logs)",
                notes="development only; refused PHI by design."),
    # e-prescribing (planned)
    AdapterSpec("surescripts", "pharmacy", "Surescripts network (NCPDP SCRIPT)", phi_capable=True,
                sees="NewRx/CancelRx/RxRenewal: patient name, birth date, address, phone, medication, diagnosis, "
                     "prescriber identifiers",
                notes="network participation and BAA are contractual prerequisites; not built yet."),
    AdapterSpec("drfirst", "pharmacy", "DrFirst (e-prescribing/EPCS)", phi_capable=True,
                sees="as Surescripts, through DrFirst's platform",
                notes="alternative route to the network; BAA required; not built yet."),
    # claims (planned)
    AdapterSpec("optum-medical-network", "clearinghouse", "Optum (Change Healthcare) Medical Network",
                phi_capable=True,
                sees="270/271 eligibility and 837P claims: subscriber/patient name, birth date, member id, "
                     "diagnoses, procedures, dates of service",
                notes="a clearinghouse is itself a HIPAA covered entity; a BAA is still signed when it acts "
                      "for the practice. Not built yet."),
    AdapterSpec("stedi", "clearinghouse", "Stedi", phi_capable=True,
                sees="as Optum (it accepts the same CHC v3 JSON)", notes="BAA required; not built yet."),
    AdapterSpec("availity", "clearinghouse", "Availity", phi_capable=True,
                sees="eligibility, claims and claim status data", notes="BAA required; not built yet."),
    # EHRs (issue 5): the clinic's own systems
    AdapterSpec("epic", "ehr", "Epic (the clinic's EHR)", phi_capable=True, boundary="covered_entity",
                sees="everything synced or written back for the clinic's patients",
                notes="the covered entity's own system (the hub is the clinic's business associate)."),
    AdapterSpec("cerner", "ehr", "Oracle Health / Cerner (the clinic's EHR)", phi_capable=True,
                boundary="covered_entity", sees="as Epic", notes="as Epic."),
    AdapterSpec("athena", "ehr", "athenahealth (the clinic's EHR)", phi_capable=True,
                boundary="covered_entity", sees="as Epic", notes="as Epic."),
)


class PhiGuard:
    """The single check between PHI and an outside adapter."""

    @staticmethod
    def allows_phi(adapter: OutboundAdapter) -> bool:
        boundary = getattr(adapter, "boundary", "vendor")
        return bool(adapter.phi_capable) and (boundary != "vendor" or adapter.baa is True)

    @staticmethod
    def require_baa(adapter: OutboundAdapter, *, purpose: str = "") -> None:
        """Raise :class:`NotPhiCapable` or :class:`BaaRequired` unless ``adapter`` may receive PHI."""
        name = str(getattr(adapter, "name", type(adapter).__name__))
        if not getattr(adapter, "phi_capable", False):
            log.warning("refused PHI for outside adapter %s (%s): declared PHI-free", name, purpose or "-")
            raise NotPhiCapable(name, "the adapter is declared phi_capable: false", purpose)
        boundary = getattr(adapter, "boundary", "vendor")
        if boundary == "vendor" and getattr(adapter, "baa", False) is not True:
            log.warning("refused PHI for outside adapter %s (%s): no BAA", name, purpose or "-")
            raise BaaRequired(name, "no Business Associate Agreement (baa: false)", purpose)

    @classmethod
    def check(cls, adapter: OutboundAdapter, *, contains_phi: bool, purpose: str = "") -> None:
        """For adapters that send both kinds: PHI-free content passes, PHI needs :meth:`require_baa`."""
        if contains_phi:
            cls.require_baa(adapter, purpose=purpose)


P = ParamSpec("P")
R = TypeVar("R")
A = TypeVar("A", bound=OutboundAdapter)


def sends_phi(method: Callable[Concatenate[A, P], R]) -> Callable[Concatenate[A, P], R]:
    """Decorate an adapter method that sends PHI: the guard runs before the method body."""

    @functools.wraps(method)
    def guarded(self: A, /, *args: P.args, **kwargs: P.kwargs) -> R:
        PhiGuard.require_baa(self, purpose=method.__name__)
        return method(self, *args, **kwargs)

    return guarded


class BaaAdapter:
    """Convenience base: an adapter whose facts come from its :class:`AdapterSpec` (as configured)."""

    def __init__(self, spec: AdapterSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.baa = spec.baa
        self.phi_capable = spec.phi_capable
        self.boundary: Boundary = spec.boundary


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [n.strip() for n in value.replace(";", ",").split(",") if n.strip()]
    return [str(n).strip() for n in value if str(n).strip()]


class AdapterRegistry:
    """The known adapters with this deployment's BAA facts applied."""

    def __init__(self, specs: Iterable[AdapterSpec] = KNOWN_ADAPTERS, baa_signed: Iterable[str] = ()) -> None:
        self._specs: dict[str, AdapterSpec] = {}
        for spec in specs:
            self.register(spec)
        for name in baa_signed:
            spec = self.get(name)
            if spec.boundary != "vendor":
                raise ValueError(f"adapter {name!r} runs inside the {spec.boundary} boundary; it needs no BAA")
            self._specs[name] = replace(spec, baa=True)

    @classmethod
    def from_settings(cls, settings: Any, specs: Iterable[AdapterSpec] = KNOWN_ADAPTERS) -> AdapterRegistry:
        """Read ``baa_signed`` (a comma-separated string or a list of adapter names) from settings."""
        extra = getattr(settings, "extra", None) or {}
        value = extra["baa_signed"] if "baa_signed" in extra else getattr(settings, "baa_signed", None)
        return cls(specs, _names(value))

    def register(self, spec: AdapterSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"adapter {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def get(self, name: str) -> AdapterSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs))
            raise ValueError(f"unknown outside adapter {name!r} (known: {known})") from None

    def __iter__(self) -> Iterator[AdapterSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def may_receive_phi(self, name: str) -> bool:
        return PhiGuard.allows_phi(self.get(name))
