"""HL7 v2 → FHIR R4 (inbound), sans-IO.

- ``parse``: fast tolerant ER7 parser (``strict=True`` adds hl7apy structure validation)
- ``convert``: message → FHIR R4 transaction Bundle (IG v2-to-FHIR segment/datatype maps)
- errors: ``HL7v2Error`` and subclasses carry MSA/ERR codes and positions, never values
"""

from mappers.hl7v2.context import Options
from mappers.hl7v2.convert import Conversion, convert
from mappers.hl7v2.errors import HL7v2Error, MalformedMessage, MappingError, StructureError, UnsupportedMessage
from mappers.hl7v2.parser import Message, parse

__all__ = [
    "Conversion",
    "HL7v2Error",
    "MalformedMessage",
    "MappingError",
    "Message",
    "Options",
    "StructureError",
    "UnsupportedMessage",
    "convert",
    "parse",
]
