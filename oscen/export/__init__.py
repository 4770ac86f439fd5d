"""Exports of oscen graphs to other hosts: the web (an AudioWorklet page running the same kernel)."""

from .schedule import Schedule, render_scheduled
from .serve import ExportServer
from .web import ExportError, WebExport, export_web

__all__ = ["ExportError", "ExportServer", "Schedule", "WebExport", "export_web", "render_scheduled"]
