"""The vendor profile schema: what the hub needs to know to talk FHIR R4 with one EHR vendor.

A profile is data (one TOML file per vendor) so that adding a vendor is a new file,
not a new branch in code. Every model forbids unknown keys: a typo in a profile is a
start-up error naming the field, never a silently ignored setting.
Facts and their sources: ``../shared/docs/vendor-notes.md`` (cited in each TOML).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Interaction = Literal["read", "vread", "search", "create", "update", "patch", "delete", "history"]
PagingStyle = Literal["session-id", "page-context", "cursor", "next-link"]
AuthStyle = Literal["backend-services-jwt", "client-credentials-secret", "none"]
ClientAuth = Literal["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]
Tenancy = Literal["per-customer-base", "tenant-in-path", "practice-param", "single"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenancySpec(Strict):
    """Where the clinic (tenant) lives in a request: its own base URL, a path segment, or a parameter."""

    style: Tenancy
    base_url_pattern: str = Field(min_length=8)  # "{tenant}" is replaced by the connection's tenant
    sandbox_base_url: str | None = None
    param: str | None = None  # e.g. athena's "ah-practice"
    param_format: str | None = None  # e.g. "Organization/a-1.Practice-{tenant}"
    trailing_slash: bool = False  # athena: a base without "/" lost "/r4" in some clients

    @model_validator(mode="after")
    def _param_needs_format(self) -> TenancySpec:
        if self.style == "practice-param" and not (self.param and self.param_format):
            raise ValueError("practice-param tenancy needs both 'param' and 'param_format'")
        if self.style == "tenant-in-path" and "{tenant}" not in self.base_url_pattern:
            raise ValueError("tenant-in-path tenancy needs '{tenant}' in base_url_pattern")
        return self


class DiscoverySpec(Strict):
    smart_configuration: str = ".well-known/smart-configuration"  # relative to the FHIR base
    capability_statement: str = "metadata"
    openid_configuration: str | None = None
    host_root_discovery: bool = False  # Cerner: the host root answers 502, only the tenant base works


class AuthSpec(Strict):
    """How the hub obtains a system (backend) access token."""

    style: AuthStyle
    client_auth: ClientAuth
    grant_type: Literal["client_credentials"] = "client_credentials"
    assertion_alg: Literal["RS384", "ES384", "RS256"] | None = None
    assertion_lifetime_s: int = Field(default=300, ge=30, le=300)  # Epic: exp no more than 5 min ahead
    assertion_jku: bool = False  # put the hosted JWK Set URL in the assertion header
    assertion_kid: bool = True
    send_aud: bool = True
    token_url: str | None = None  # when discovery cannot be used; "{tenant}" is replaced

    @model_validator(mode="after")
    def _jwt_needs_alg(self) -> AuthSpec:
        if self.client_auth == "private_key_jwt" and not self.assertion_alg:
            raise ValueError("private_key_jwt needs 'assertion_alg'")
        return self


class ScopeSpec(Strict):
    style: Literal["v1", "v2", "v1+v2"]
    request: list[str] = Field(default_factory=list)  # what the hub asks for by default (system scopes)
    silently_dropped: list[str] = Field(default_factory=list)  # regexes of scopes the vendor drops unannounced
    wildcards: bool = True  # Cerner refuses "system/*.read"
    explicit_required: bool = False  # athena: no defaults, a request without scopes fails

    @field_validator("silently_dropped")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            re.compile(pattern)
        return value


class TokenSpec(Strict):
    lifetime_s: int = Field(gt=0)
    lifetime_verified: bool = True
    refresh_margin_s: int = Field(default=60, ge=0)  # refresh this long before expiry
    format: Literal["opaque", "jwt"]
    refresh_tokens: bool = False
    refresh_rotates: bool | None = None
    min_refresh_interval_s: int = 0  # Cerner: more often than once a minute "may result in throttling"


class SearchVariant(Strict):
    """One search the sync runs for a resource type, with the extra parameters it needs."""

    params: dict[str, str] = Field(default_factory=dict)


class ResourceSpec(Strict):
    interactions: list[Interaction]
    required_params: list[list[str]] = Field(default_factory=list)  # alternatives: any one combination
    patient_param: str = "patient"
    since_param: str | None = None  # e.g. "_lastUpdated"; None: ``--since`` filters on meta.lastUpdated locally
    sync: list[SearchVariant] = Field(default_factory=list)  # empty: not pulled by ``telehub sync``
    count_default: int | None = Field(default=None, gt=0)
    count_max: int | None = Field(default=None, gt=0)


class PagingSpec(Strict):
    style: PagingStyle
    token_param: str | None = None  # sessionID, -pageContext, cursor
    count_param: str = "_count"
    page_size: int = Field(default=50, gt=0)  # what the hub asks for
    max_page_size: int | None = Field(default=None, gt=0)
    max_pages: int = Field(default=50, gt=0)
    total_reliable: bool = True  # Epic: total = page size with _count; Cerner often omits it
    duplicates_across_pages: bool = False
    session_expired_codes: list[str] = Field(default_factory=list)  # vendor codes meaning "restart the search"
    session_expired_statuses: list[int] = Field(default_factory=list)  # e.g. HAPI: 410 Gone for an expired page

    @model_validator(mode="after")
    def _token_param(self) -> PagingSpec:
        if self.style != "next-link" and not self.token_param:
            raise ValueError(f"paging style {self.style!r} needs 'token_param'")
        if self.max_page_size is not None and self.page_size > self.max_page_size:
            raise ValueError("page_size is larger than max_page_size")
        return self


class ContentSpec(Strict):
    accept: str = "application/fhir+json"
    content_type: str = "application/fhir+json"
    default_when_unspecified: str = "application/fhir+json"  # Epic answers XML without an Accept


class IdSpec(Strict):
    pattern: str = r"^[A-Za-z0-9\-.]{1,64}$"
    case_sensitive: bool = True
    differs_per_fhir_version: bool = False
    examples: list[str] = Field(default_factory=list)

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        re.compile(value)
        return value

    @model_validator(mode="after")
    def _examples_match(self) -> IdSpec:
        for example in self.examples:
            if not re.match(self.pattern, example):
                raise ValueError(f"example id {example!r} does not match the pattern")
        return self


class MrnRule(Strict):
    """How to recognise a patient's MRN among its identifiers (every given condition must hold)."""

    system: str | None = None
    system_regex: str | None = None  # Epic: the customer segment of the OID varies, never hard-code it
    type_text: str | None = None
    type_code: str | None = None  # a v2-0203 code in identifier.type.coding, e.g. "MR"

    @model_validator(mode="after")
    def _something(self) -> MrnRule:
        if not (self.system or self.system_regex or self.type_text or self.type_code):
            raise ValueError("an MRN rule needs at least one of system, system_regex, type_text, type_code")
        if self.system_regex:
            re.compile(self.system_regex)
        return self


class IdentifierSpec(Strict):
    mrn: list[MrnRule] = Field(min_length=1)
    other_systems: dict[str, str] = Field(default_factory=dict)  # label -> system (documentation + mapping)


class VideoLinkSpec(Strict):
    """Cerner: video-visit links live in contained HealthcareService resources of an Appointment."""

    contained_type: str = "HealthcareService"
    telecom_system: str = "url"
    roles: dict[str, str]  # canonical role ("patient"/"provider") -> the contained resource's type.text


class ExtensionSpec(Strict):
    known: dict[str, str] = Field(default_factory=dict)  # url -> what it means
    video_links: VideoLinkSpec | None = None


class ErrorSpec(Strict):
    vendor_code_system: str | None = None  # regex of the coding system carrying vendor codes
    outcome_entries_in_searchset: bool = False
    html_error_pages: bool = False
    empty_error_bodies: list[int] = Field(default_factory=list)
    oauth_error_uri: bool = False
    do_not_retry_codes: list[str] = Field(default_factory=list)  # e.g. Epic break-the-glass
    information_on_400_is_fatal: bool = False

    @field_validator("vendor_code_system")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class WriteSpec(Strict):
    create_returns_body: bool = True
    read_back_via_location: bool = True
    conditional_create: bool = False
    transaction: bool = False
    batch: bool = False
    if_match_updates: bool = True


class RateLimitSpec(Strict):
    """Self-throttling: the hub stays under this even where the vendor publishes no limit."""

    requests_per_second: float = Field(gt=0)
    burst: int = Field(gt=0)
    documented: bool = False
    retry_after_header: bool = True  # honour it if sent, whether or not documented
    max_retries: int = Field(default=4, ge=0, le=10)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    breaker_failures: int = Field(default=5, gt=0)
    breaker_reset_s: float = Field(default=30.0, gt=0)


class LaunchSpec(Strict):
    banner_as_string: bool = False  # Epic: need_patient_banner is the string "true"
    extra_token_fields: list[str] = Field(default_factory=list)


class VendorProfile(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")
    display: str
    fhir_version: Literal["4.0.1"] = "4.0.1"
    hooks: str | None = None  # module under vendor_profiles.hooks, only where data cannot say it
    tenancy: TenancySpec
    discovery: DiscoverySpec = Field(default_factory=DiscoverySpec)
    auth: AuthSpec
    scopes: ScopeSpec
    tokens: TokenSpec
    resources: dict[str, ResourceSpec] = Field(min_length=1)
    paging: PagingSpec
    content: ContentSpec = Field(default_factory=ContentSpec)
    ids: IdSpec = Field(default_factory=IdSpec)
    identifiers: IdentifierSpec
    extensions: ExtensionSpec = Field(default_factory=ExtensionSpec)
    errors: ErrorSpec = Field(default_factory=ErrorSpec)
    writes: WriteSpec = Field(default_factory=WriteSpec)
    rate_limit: RateLimitSpec
    launch: LaunchSpec = Field(default_factory=LaunchSpec)

    @field_validator("resources")
    @classmethod
    def _resource_names(cls, value: dict[str, ResourceSpec]) -> dict[str, ResourceSpec]:
        for name in value:
            if not re.match(r"^[A-Z][A-Za-z]+$", name):
                raise ValueError(f"{name!r} is not a FHIR resource type name")
        return value

    def supports(self, resource_type: str, interaction: Interaction) -> bool:
        spec = self.resources.get(resource_type)
        return spec is not None and interaction in spec.interactions

    def base_url(self, tenant: str) -> str:
        """The FHIR base for ``tenant`` from the pattern (a connection may override it)."""
        return self.tenancy.base_url_pattern.replace("{tenant}", tenant)
