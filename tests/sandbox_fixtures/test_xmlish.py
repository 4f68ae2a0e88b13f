"""The XML-ish rendering Epic's flavour answers with when JSON is not asked for (vendor-notes §2.3)."""
from __future__ import annotations

from xml.etree import ElementTree

from sandbox_fixtures.sandbox.xmlish import NS, to_xml


def test_bundle_with_nested_resources_is_well_formed() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "active": True,
               "name": [{"family": "O'Brien <&>", "given": ["A", "B"]}], "_birthDate": {"extension": []},
               "extension": [{"url": "http://x", "valueString": "v"}],
               "text": {"status": "generated", "div": "<div>not copied</div>"}}
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 1,
              "link": [{"relation": "self", "url": "x?a=1&b=2"}],
              "entry": [{"fullUrl": "urn:uuid:1", "resource": patient, "search": {"mode": "match"}}]}
    root = ElementTree.fromstring(to_xml(bundle))  # our own output, not untrusted input
    ns = {"f": NS}
    assert root.tag == f"{{{NS}}}Bundle"
    assert root.find("f:link/f:url", ns).get("value") == "x?a=1&b=2"  # type: ignore[union-attr]
    node = root.find("f:entry/f:resource/f:Patient", ns)
    assert node is not None
    assert [g.get("value") for g in node.findall("f:name/f:given", ns)] == ["A", "B"]
    assert node.find("f:name/f:family", ns).get("value") == "O'Brien <&>"  # type: ignore[union-attr]
    assert node.find("f:active", ns).get("value") == "true"  # type: ignore[union-attr]
    assert node.find("f:extension", ns).get("url") == "http://x"  # type: ignore[union-attr]
    assert node.find("f:birthDate", ns) is None and node.find("f:text/f:div", ns) is None
