"""An AWS emulator for the provider's tests: moto's server with the services
and fixes moto lacks added in front of it. See README.md beside this package."""

from .app import EmulatorApp

__all__ = ["EmulatorApp"]
