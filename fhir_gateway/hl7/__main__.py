"""``python -m fhir_gateway.hl7 …``: the ``telehub hl7`` group, runnable before it is attached to the CLI."""
from fhir_gateway.hl7.commands import hl7

if __name__ == "__main__":
    hl7(prog_name="telehub hl7")
