"""Generated from proto/centinela/v1 by `make proto`. Do not edit."""
