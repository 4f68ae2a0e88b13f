"""The SMART App Launch 2.2 client core: no Flask, no storage — functions of their inputs plus a transport.

https://hl7.org/fhir/smart-app-launch/app-launch.html
"""
