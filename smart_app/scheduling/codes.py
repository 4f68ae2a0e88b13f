"""Code systems, extension URLs and identifier systems the scheduling feature writes.

Kept in one place so the FHIR shapes stay consistent between writers and readers.
Standard systems first (R4 terminology, US Core, Da Vinci Plan-Net); Telehub's own
systems live under ``TELEHUB`` and are documented in docs/scheduling.md.
"""
from __future__ import annotations

from typing import Literal

TELEHUB = "https://telehub.example/fhir"

# Slot.appointmentType / Appointment.appointmentType: v2 table 0276 (R4 value set v2-0276).
APPOINTMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
# Telehub's appointment-type catalogue (the provider's own types, e.g. "new-video-30").
VISIT_TYPE_SYSTEM = f"{TELEHUB}/CodeSystem/visit-type"
# Modality of a visit, carried in Slot.serviceType / Appointment.serviceType.
MODALITY_SYSTEM = f"{TELEHUB}/CodeSystem/visit-modality"
Modality = Literal["video", "phone", "async"]
MODALITIES: tuple[Modality, ...] = ("video", "phone", "async")
MODALITY_DISPLAY: dict[str, str] = {"video": "Video visit", "phone": "Phone visit", "async": "Async consult"}

# Availability rules (weekly hours, buffers, types, blackouts) as JSON on the Schedule.
AVAILABILITY_EXT = f"{TELEHUB}/StructureDefinition/availability-rules"
# Marks slots this feature generated (so regeneration never touches hand-made slots).
GENERATED_TAG_SYSTEM = f"{TELEHUB}/CodeSystem/slot-origin"
GENERATED_TAG = {"system": GENERATED_TAG_SYSTEM, "code": "generated"}
# Hash of the iCalendar feed token, as a Schedule.identifier (so it is searchable, never the token itself).
ICAL_TOKEN_SYSTEM = f"{TELEHUB}/sid/ical-feed-token-sha256"
# Patient location attested at booking or check-in (USPS code), recorded on the Appointment.
ATTESTED_LOCATION_EXT = f"{TELEHUB}/StructureDefinition/patient-attested-state"

# Licences: US Core jurisdiction extension on the identifier, Plan-Net qualification extension.
USPS_SYSTEM = "https://www.usps.com/"
US_CORE_JURISDICTION = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-jurisdiction"
PLANNET_QUALIFICATION = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/practitioner-qualification"
DEGREE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0360"
LICENCE_KIND_SYSTEM = f"{TELEHUB}/CodeSystem/licence-kind"
LICENCE_NUMBER_SYSTEM = f"{TELEHUB}/sid/state-licence"  # + "/" + state

# Appointment.cancelationReason (R4 value set appointment-cancellation-reason).
CANCEL_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
CANCEL_REASONS: dict[str, str] = {  # the subset offered in the UI; codes checked against the R4 code system
    "pat": "Patient",
    "pat-cpp": "Patient: Canceled via Patient Portal",
    "pat-fb": "Patient: Feeling Better",
    "pat-ucp": "Patient: Unhappy/Changed Provider",
    "prov": "Provider",
    "prov-pers": "Provider: Personal",
    "prov-edu": "Provider: Edu/Meeting",
    "prov-hosp": "Provider: Hospitalized",
    "other": "Other",
    "oth-err": "Other: Error",
    "oth-int": "Other: No Interpreter Available",
    "oth-oerr": "Other: Schedule Order Error",
}

# CommunicationRequest/Communication.medium: v3 ParticipationMode.
MEDIUM_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIUM = {"sms": "SMSWRIT", "email": "EMAILWRIT", "console": "WRITTEN"}
COMMUNICATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/communication-category"

# Who booked (patient self-service or front desk), on the Appointment; the AuditEvent has the user.
BOOKED_BY_EXT = f"{TELEHUB}/StructureDefinition/booked-by"
# Reminder CommunicationRequests share groupIdentifier = the Appointment id (searchable: group-identifier).
REMINDER_GROUP_SYSTEM = f"{TELEHUB}/sid/appointment-reminders"
CONTAINS_PHI_EXT = f"{TELEHUB}/StructureDefinition/reminder-contains-phi"
NOTIFICATION_ID_SYSTEM = f"{TELEHUB}/sid/notification-provider"  # + "/" + adapter name
