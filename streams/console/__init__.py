"""The triage console: a web page where analysts read alerts and give verdicts.

`abuse-monitor console` serves it; `start_console` runs it inside an existing event loop
(the demo's, or a test's). See docs/console.md.
"""

from __future__ import annotations

from streams.console.app import RunningConsole, create_app, start_console

__all__ = ["RunningConsole", "create_app", "start_console"]
