"""Fast, tolerant HL7 v2 ER7 parser (sans-IO), plus hl7apy strict validation on demand.

v2.8 Chapter 2 (Control), sections 2.5-2.7: message construction rules.
"""

from mappers.hl7v2.parser.encoding import Delimiters
from mappers.hl7v2.parser.message import Message, ParseWarning, Segment, Value
from mappers.hl7v2.parser.parse import parse

__all__ = ["Delimiters", "Message", "ParseWarning", "Segment", "Value", "parse"]
