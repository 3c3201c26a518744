"""RegoPolicy: the Rego policies evaluated in-process with regopy (rego-cpp), for the embedded mode."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import regopy

from adapters.policy_files import DECISION_REF, START_PROBES, PolicyFile, PolicyLoadError, line_at, load_policy_files
from commands.policy import Decision

# Binding the decision to a variable: regopy answers *undefined* for a rule whose default applies, but a binding
# of the whole object is always defined while the policy's default holds (and an undefined one is a denial).
_QUERY = f"x := {DECISION_REF}"

# regopy's error text is an s-expression with length-prefixed strings: `(error 22:/path/f.rego|44|2` (file,
# byte offset, length) then `(errormsg 24:Invalid boolean operator)`.
_ERROR = re.compile(r"\(error (\d+):")
_MESSAGE = re.compile(r"\(errormsg (\d+):")

class RegoPolicy:
    """Decides requests with the policy folder compiled once into a regopy bundle; one interpreter per thread."""

    def __init__(self, policy_dir: Path) -> None:
        files = load_policy_files(policy_dir)
        builder = regopy.Interpreter()
        for policy_file in files:
            try:
                builder.add_module(str(policy_file.path), policy_file.source)
            except regopy.RegoError as error:
                raise _load_error(str(error), files, policy_file) from None
        try:
            # a prebuilt bundle evaluates ~8x faster than querying the modules (measured: 1.1 vs 9.5 ms a decision)
            self._bundle = builder.build(_QUERY, [])
        except regopy.RegoError as error:
            raise _load_error(str(error), files, None) from None
        self._files = files
        self._local = threading.local()
        for probe in START_PROBES:
            output = self._evaluate(probe)
            if not output.ok():
                raise _load_error(str(output), files, None)

    def decide(self, request: Mapping[str, Any]) -> Decision:
        """Evaluate data.casestream.authz.decision for one request; anything but a clear allow is a denial."""
        try:
            output = self._evaluate(request)
        except (regopy.RegoError, ValueError) as error:
            # ValueError: regopy could not read its own answer (it leaves some characters unescaped)
            return Decision(False, (f"the policy could not evaluate this request: {error}",))
        if not output.ok():
            return Decision(False, (f"the policy could not evaluate this request: {output}",))
        return _decision(output)

    def _evaluate(self, request: Mapping[str, Any]) -> regopy.Output:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            # interpreters hold the input between set_input and query: one per thread, never shared
            interpreter = regopy.Interpreter()
            self._local.interpreter = interpreter
        interpreter.set_input(dict(request))
        return interpreter.query_bundle(self._bundle)


def _decision(output: regopy.Output) -> Decision:
    """The Decision in a regopy answer; undefined or malformed is a denial with a reason."""
    try:
        value = orjson.loads(output.binding("x").json())
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, orjson.JSONDecodeError):
        return Decision(False, ("the policy gave no decision (undefined)",))
    if not isinstance(value, dict) or not isinstance(value.get("allow"), bool):
        return Decision(False, ("the policy gave no decision (malformed)",))
    reasons = value.get("reasons")
    named = tuple(str(reason) for reason in reasons) if isinstance(reasons, list) else ()
    if value["allow"] is True:
        return Decision(True, named)
    return Decision(False, named or ("denied by policy",))


def _load_error(text: str, files: list[PolicyFile], current: PolicyFile | None) -> PolicyLoadError:
    """A PolicyLoadError naming the file and line regopy's error text points at (or the file being added)."""
    file_name, line = (str(current.path) if current else "policies", None)
    located = _ERROR.search(text)
    if located:
        start = located.end()
        name = text[start : start + int(located.group(1))]
        position = re.match(r"\|(\d+)\|", text[start + len(name) :])
        source = next((f.source for f in files if str(f.path) == name), None)
        if name:
            file_name = name
        if position and source is not None:
            line = line_at(source, int(position.group(1)))
    message_at = _MESSAGE.search(text)
    if message_at:
        start = message_at.end()
        message = text[start : start + int(message_at.group(1))]
    else:
        message = " ".join(text.split())[:500]
    return PolicyLoadError(file_name, line, message)

