"""Plugins: the pluggy manager that loads the core's plugin and every installed vertical, and
the registry of what they register."""

from __future__ import annotations

from .manager import CORE_PLUGIN, ENTRY_POINT_GROUP, PluginInfo, StillroomPluginManager, implemented_hooks
from .registry import Registry

__all__ = ["CORE_PLUGIN", "ENTRY_POINT_GROUP", "PluginInfo", "Registry", "StillroomPluginManager", "implemented_hooks"]
