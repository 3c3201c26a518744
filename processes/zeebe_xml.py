"""The Zeebe side of BPMN XML: namespaces and an element's `zeebe:*` extensions as plain data."""

from __future__ import annotations

from typing import Any, Final

from lxml import etree
from SpiffWorkflow.bpmn.parser.node_parser import DEFAULT_NSMAP

__all__ = ["BPMN_NS", "NSMAP", "ZEEBE_NS", "local_name", "zeebe_extensions"]

BPMN_NS: Final = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ZEEBE_NS: Final = "http://camunda.org/schema/zeebe/1.0"
NSMAP: Final[dict[str, str]] = {**DEFAULT_NSMAP, "zeebe": ZEEBE_NS}


def local_name(el: Any) -> str:
    """An element's tag without its namespace."""
    return str(etree.QName(el).localname)


def zeebe_extensions(node: Any) -> dict[str, Any]:
    """The `zeebe:*` extension elements of a BPMN node as plain (serialisable) data."""
    ext: dict[str, Any] = {}
    for el in node.xpath("./bpmn:extensionElements/zeebe:*", namespaces=NSMAP):
        name = local_name(el)
        if name == "ioMapping":
            ext[name] = {
                "inputs": [dict(i.attrib) for i in el.xpath("./zeebe:input", namespaces=NSMAP)],
                "outputs": [dict(o.attrib) for o in el.xpath("./zeebe:output", namespaces=NSMAP)],
            }
        elif name == "taskHeaders":
            ext[name] = {h.get("key"): h.get("value") for h in el.xpath("./zeebe:header", namespaces=NSMAP)}
        elif name == "properties":
            ext[name] = {p.get("name"): p.get("value") for p in el.xpath("./zeebe:property", namespaces=NSMAP)}
        else:
            ext[name] = dict(el.attrib)
    return ext
